"""
What a listener reads, and the cache that lets listeners of one topic share
their reads. Nothing here does I/O; the threaded and asyncio runners wrap it
with their own locks and waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import ForeignEntryError
from ._protocol import RingState, as_text, sequence_of

CACHE_ENTRIES = 4096
"""Recent entries a client keeps per topic for its other listeners."""


@dataclass(slots=True)
class Batch:
    """One read: entries in order, the topic identity seen right after the
    read, the entry just before the first one as Redis had it then (None if
    unknown or gone), and (only when nothing came) the ring's state for the
    idle checks."""

    entries: list[Any]
    epoch: str | None
    state: RingState | None = None
    previous: Any = None


def batch_of(replies: list[Any]) -> Batch | None:
    """The Batch from the replies of the commands ``queue_read`` queued;
    None when nothing came, and the caller must fetch the ring's state."""
    streams, epoch, previous = replies
    if isinstance(streams, dict):  # RESP3 answers XREAD with a map
        streams = list(streams.items())
    if not streams:
        return None
    return Batch(streams[0][1], as_text(epoch), None, previous[0] if previous else None)


@dataclass(slots=True)
class Flight:
    """A read in progress that listeners at the same position wait for."""

    done: bool = False
    batch: Batch | None = None
    error: BaseException | None = None


class ReadCache:
    """
    Entries recently read from one topic, by sequence.

    Listeners at the same position (the common case: all caught up) then cost
    one Redis read per batch between them instead of one each.
    """

    def __init__(self, keep: int = CACHE_ENTRIES) -> None:
        self._keep = keep
        self._entries: dict[int, Any] = {}
        self._epoch: str | None = None
        self._newest = -1

    def lookup(self, sequence: int, count: int, epoch: str | None) -> Batch | None:
        """Entries from ``sequence`` on, if the cache holds that one and
        belongs to the topic identity ``epoch`` the reader knows."""
        entries = self._entries
        if sequence not in entries or epoch != self._epoch:
            return None
        previous = entries.get(sequence - 1)
        found: list[Any] = []
        while sequence in entries and len(found) < count:
            found.append(entries[sequence])
            sequence += 1
        return Batch(found, self._epoch, None, previous)

    def add(self, batch: Batch) -> None:
        if batch.epoch != self._epoch or self._rolled_back(batch):
            self._entries.clear()
            self._epoch = batch.epoch
            self._newest = -1
        entries = batch.entries
        if not entries:
            return
        try:
            first = sequence_of(entries[0][0])
            last = sequence_of(entries[-1][0])
            # Contiguous unless another tool deleted an entry in between:
            # trimming only ever removes the oldest ones.
            contiguous = last - first == len(entries) - 1
        except ForeignEntryError:
            contiguous = False
        if contiguous:
            self._entries.update(zip(range(first, last + 1), entries, strict=True))
            self._newest = max(self._newest, last)
        else:
            for entry in entries:
                try:
                    sequence = sequence_of(entry[0])
                except ForeignEntryError:
                    break  # the readers report it; nothing can follow it
                self._entries[sequence] = entry
                self._newest = max(self._newest, sequence)
        if len(self._entries) > 2 * self._keep:
            oldest = self._newest - self._keep
            self._entries = {s: e for s, e in self._entries.items() if s > oldest}

    def _rolled_back(self, batch: Batch) -> bool:
        """Does Redis now hold another entry where the cache holds one?"""
        previous = batch.previous
        if previous is None:
            return False
        try:
            cached = self._entries.get(sequence_of(previous[0]))
        except ForeignEntryError:
            return False  # not hzreliable's: the readers report it
        return cached is not None and cached[1] != previous[1]

    def clear(self) -> None:
        self._entries.clear()
        self._newest = -1
