"""
The rules shared by every API: key names, sequences, publish replies and
the listener's position. Nothing here talks to Redis, so the threaded and
the asyncio clients apply exactly the same logic.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from ._codec import Codec
from ._config import ReliableTopicConfig
from ._errors import (
    ForeignEntryError,
    MessageDecodeError,
    ReplicationAckError,
    StaleSequenceException,
    TopicConfigConflictError,
    TopicOverloadException,
    TopicResetException,
)
from ._listener import FROM_LATEST, FROM_OLDEST, TopicMessage

logger = logging.getLogger("hzreliable")

_NAME = re.compile(r"[A-Za-z0-9_.:/@+=-]{1,200}")
KEY_PREFIX = "hzreliable:"


def check_topic_name(name: object) -> str:
    """Return ``name`` if it may name a topic, else raise."""
    if not isinstance(name, str):
        raise TypeError(f"topic name must be a str, not {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid topic name {name!r}: use 1 to 200 characters from "
            "A-Z a-z 0-9 and _ . : / @ + = -"
        )
    return name


@dataclass(frozen=True, slots=True)
class TopicKeys:
    """The Redis keys of one topic; the hash tag keeps them in one slot."""

    stream: str
    meta: str

    @classmethod
    def of(cls, name: str) -> TopicKeys:
        base = f"{KEY_PREFIX}{{{name}}}"
        return cls(f"{base}:stream", f"{base}:meta")

    @property
    def all(self) -> list[str]:
        return [self.stream, self.meta]


def new_epoch() -> str:
    """A fresh identity for a topic, offered with every call that may create
    it (random, so a recreated topic never reuses an old identity)."""
    return os.urandom(8).hex()


def after_id(sequence: int) -> bytes:
    """The stream ID that XREAD reads after to reach ``sequence``."""
    return b"0-%d" % sequence


def entry_id(sequence: int) -> bytes:
    return b"0-%d" % (sequence + 1)


def sequence_of(entry_id: bytes, topic: str | None = None) -> int:
    # Limitation: an entry another tool added with an ID not of the form 0-N
    # (say XADD *) makes the topic unusable (ForeignEntryError) until it is
    # deleted: the stream's last ID then refuses every later XADD 0-*.
    # Keeping the sequence in a field instead of the ID would tolerate such
    # entries, at the cost of a field per message and a slower read.
    if entry_id.startswith(b"0-"):
        try:
            return int(entry_id[2:]) - 1
        except ValueError:
            pass
    raise ForeignEntryError(as_text(entry_id) or "", topic)


def foreign_entry(name: str, newest: Any) -> ForeignEntryError | None:
    """The error to raise for a script that failed on topic ``name`` if
    ``newest`` (XREVRANGE of its stream, COUNT 1) shows a foreign entry."""
    if newest:
        try:
            sequence_of(newest[0][0], name)
        except ForeignEntryError as error:
            return error
    return None


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------- topics


def ring_settings(
    name: str, config: ReliableTopicConfig | None, stored: list[Any]
) -> ReliableTopicConfig:
    """
    Reconcile a requested config with the ring settings stored in Redis.

    Fields the caller did not set explicitly adopt the stored values, so a
    consumer may open a topic by name alone; an explicit difference is an
    error rather than two clients silently disagreeing.
    """
    capacity, ttl_us = int(stored[0]), int(stored[1])
    ttl = ttl_us / 1_000_000
    base = config or ReliableTopicConfig()
    explicit = base.model_fields_set
    wanted_capacity = base.capacity if "capacity" in explicit else capacity
    wanted_ttl_us = base.ttl_us if "time_to_live" in explicit else ttl_us
    if (wanted_capacity, wanted_ttl_us) != (capacity, ttl_us):
        raise TopicConfigConflictError(
            name, (capacity, ttl), (base.capacity, base.time_to_live)
        )
    values = base.model_dump(exclude_unset=True)
    values.update(capacity=capacity, time_to_live=ttl)
    if "read_batch_size" not in explicit:
        values["read_batch_size"] = min(base.read_batch_size, capacity)
    return ReliableTopicConfig.model_validate(values)


def same_settings(
    name: str, config: ReliableTopicConfig, settled: ReliableTopicConfig
) -> bool:
    """Would ``config`` settle to ``settled`` against the same stored ring?
    (A config that leaves the ring settings unset adopts the stored ones.)"""
    stored = [settled.capacity, settled.ttl_us]
    try:
        return ring_settings(name, config, stored) == settled
    except TopicConfigConflictError:
        return False


# ---------------------------------------------------------------- publish


def encode_messages(
    codec: Codec, messages: list[Any], config: ReliableTopicConfig
) -> list[bytes]:
    """Encode every message before anything is sent, so that one bad
    message stores nothing."""
    args: list[bytes] = []
    for index, message in enumerate(messages):
        tag, payload = codec.encode(message)
        if len(payload) > config.max_message_bytes:
            raise ValueError(
                f"message {index} is {len(payload)} bytes encoded, over "
                f"max_message_bytes ({config.max_message_bytes})"
            )
        args.append(tag)
        args.append(payload)
    return args


def check_batch(count: int, config: ReliableTopicConfig) -> None:
    """A batch that can never fit a non-overwriting ring is refused at once."""
    if (
        config.time_to_live > 0
        and config.overload_policy.value != "DISCARD_OLDEST"
        and count > config.capacity
    ):
        raise ValueError(
            f"a batch of {count} messages can never fit a ring of capacity "
            f"{config.capacity} under {config.overload_policy.value}"
        )


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """What one run of publish.lua decided."""

    sequences: list[int] | None = None
    wait: float | None = None


def read_publish_reply(
    name: str, config: ReliableTopicConfig, reply: list[Any]
) -> PublishOutcome:
    code = int(reply[0])
    if code == 0:
        first, count = int(reply[1]), int(reply[2])
        return PublishOutcome(sequences=list(range(first, first + count)))
    if code == 1:
        return PublishOutcome(sequences=[])
    if code == 2:
        return PublishOutcome(wait=int(reply[1]) / 1_000_000)
    if code == 3:
        raise TopicOverloadException(
            name,
            f"topic {name!r} is full ({config.capacity} messages within "
            f"time_to_live={config.time_to_live}s) and its policy is ERROR",
        )
    raise TopicConfigConflictError(
        name,
        (int(reply[1]), int(reply[2]) / 1_000_000),
        (config.capacity, config.time_to_live),
    )


def check_replication(
    name: str, config: ReliableTopicConfig, sequences: list[int], acked: int
) -> None:
    if sequences and acked < config.replicas_to_ack:
        raise ReplicationAckError(name, sequences, acked, config.replicas_to_ack)


def block_timeout_error(name: str, timeout: float) -> TopicOverloadException:
    return TopicOverloadException(
        name, f"topic {name!r} stayed full for the whole timeout ({timeout}s)"
    )


# ---------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class RingState:
    """The ring as state.lua saw it."""

    head: int
    tail: int
    size: int
    epoch: str | None

    @classmethod
    def parse(cls, reply: list[Any]) -> RingState:
        head, tail, size = int(reply[0]), int(reply[1]), int(reply[2])
        return cls(head, tail, size, as_text(reply[3]) if reply[3] else None)


def decode_entry(
    name: str,
    codec: Codec,
    entry: tuple[bytes, dict[bytes, bytes]],
    sequence: int | None = None,
) -> TopicMessage[Any] | MessageDecodeError:
    """Decode one XREAD/XRANGE entry (whose ``sequence`` the caller may know
    already); a bad entry becomes an error value so that the caller can
    route it through is_terminal."""
    if sequence is None:
        sequence = sequence_of(entry[0], name)
    fields = entry[1]
    try:
        payload = fields[b"d"]
        tag = fields.get(b"c", b"j")
        stamp = int(fields.get(b"t", 0)) / 1_000_000
        message = codec.decode(tag, payload)
    except KeyError:
        return MessageDecodeError(name, sequence, "the entry has no 'd' field")
    except Exception as error:  # noqa: BLE001 - any codec failure is data
        return MessageDecodeError(name, sequence, repr(error))
    return TopicMessage(name, message, sequence, stamp)


class Cursor:
    """
    A listener's position and the rules for moving it: where it starts,
    what counts as lost, what counts as a reset. The runners own the I/O and
    ask the cursor what to do with each read.
    """

    def __init__(self, name: str, tolerant: bool, epoch: str | None) -> None:
        self.name = name
        self.tolerant = tolerant
        self.epoch = epoch
        self.next = 0
        self.lost = 0
        self.resets = 0
        self.delivered = 0
        # The entry delivered last. A later read brings Redis's entry at the
        # same sequence along: if they differ, the topic was rolled back
        # underneath (failover to a lagging replica, a restart that lost
        # recent writes) and what follows is another history.
        self.last: Any = None
        # After a reset the new topic's first retained message is the start,
        # whatever its sequence: nothing of the new topic was seen yet.
        self._rebase = False

    def take(
        self, codec: Codec, entry: tuple[bytes, dict[bytes, bytes]]
    ) -> TopicMessage[Any] | MessageDecodeError:
        """Move past ``entry`` and return its message, or the decoding error
        for the listener's ``is_terminal``: either way the entry is behind
        the listener, so a bad entry never holds up the ones after it."""
        sequence = sequence_of(entry[0], self.name)
        self.next = sequence + 1
        self.last = entry
        return decode_entry(self.name, codec, entry, sequence)

    def start(self, requested: int, state: RingState) -> StaleSequenceException | None:
        """Fix the start position; an error means the listener must end."""
        if requested == FROM_OLDEST:
            self.next = state.head
        elif requested == FROM_LATEST:
            self.next = state.tail + 1
        elif requested > state.tail + 1:
            # The position belongs to an earlier life of the topic (it was
            # reset) or to nothing at all. Hazelcast's runner moves a
            # loss-tolerant listener to the head here and ends any other.
            self.next = requested
            why = f"initial sequence {requested} is beyond the tail {state.tail}"
            problem = self._reset(why, self.epoch)
            if problem is not None:
                return problem
            self.next = state.head
            self._rebase = False
        else:
            self.next = requested
        return None

    def accept(self, batch: Any) -> tuple[list[Any], StaleSequenceException | None]:
        """
        Judge one read (a ``_reading.Batch``): the entries to deliver, or an
        error that ends the listener. No entries and no error: read again.
        """
        if not batch.entries:
            if batch.state is None:
                return [], None
            return [], self.check_idle(batch.state)
        resets = self.resets
        problem = self.check_epoch(batch.epoch)
        if problem is None and self.resets == resets:
            problem = self.check_previous(batch.previous)
        if problem is not None or self.resets != resets:
            # After a tolerated reset, what was read may predate it.
            return [], problem
        problem = self.check_first(sequence_of(batch.entries[0][0], self.name))
        if problem is not None:
            return [], problem
        return batch.entries, None

    def check_epoch(self, epoch: str | None) -> StaleSequenceException | None:
        """After each read: has the topic been recreated since we started?"""
        if epoch == self.epoch or epoch is None:
            return None
        return self._reset(f"its identity changed ({self.epoch} -> {epoch})", epoch)

    def check_previous(self, previous: Any) -> StaleSequenceException | None:
        """Is the entry before this read still the one we delivered?"""
        last = self.last
        if last is None or previous is None or previous[0] != last[0]:
            return None
        if previous[1] == last[1]:
            return None
        return self._reset(
            f"sequence {self.next - 1} now holds another message (the topic "
            "was rolled back and has grown again)",
            self.epoch,
        )

    def check_first(self, first: int) -> StaleSequenceException | None:
        """Compare the first sequence read with the one expected."""
        if self._rebase:
            self._rebase = False
            self.next = first
        elif first > self.next:
            return self._lose(first, first)
        return None

    def check_idle(self, state: RingState) -> StaleSequenceException | None:
        """Nothing came: was the topic reset or trimmed past us meanwhile?"""
        if state.epoch is not None and state.epoch != self.epoch:
            return self._reset(f"its identity changed ({self.epoch})", state.epoch)
        if self.next > state.tail + 1:
            return self._reset(
                f"its tail {state.tail} is behind sequence {self.next}", self.epoch
            )
        if self.next < state.head and not self._rebase:
            return self._lose(state.head, state.head)
        return None

    def _lose(self, head: int, resume: int) -> StaleSequenceException | None:
        lost = resume - self.next
        error = StaleSequenceException(self.name, self.next, head, lost)
        if not self.tolerant:
            return error
        logger.warning(
            "topic %r: %d messages lost (sequences %d..%d were trimmed or "
            "expired); loss-tolerant listener continues at %d",
            self.name,
            lost,
            self.next,
            resume - 1,
            resume,
        )
        self.lost += lost
        self.next = resume
        self.last = None
        return None

    def _reset(self, why: str, epoch: str | None) -> StaleSequenceException | None:
        error = TopicResetException(
            self.name,
            self.next,
            0,
            0,
            f"topic {self.name!r} was reset: {why}; listener was at {self.next}",
        )
        if not self.tolerant:
            return error
        logger.warning(
            "topic %r was reset (%s); loss-tolerant listener restarts at the "
            "oldest message of the new topic",
            self.name,
            why,
        )
        self.resets += 1
        self.epoch = epoch
        self.next = 0
        self.last = None
        self._rebase = True
        return None
