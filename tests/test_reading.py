"""The read cache that listeners of one topic share (no I/O involved)."""

from __future__ import annotations

from typing import Any

from hzreliable._protocol import entry_id
from hzreliable._reading import Batch, ReadCache


def _entries(*sequences: int) -> list[Any]:
    return [(entry_id(s), {b"d": str(s).encode()}) for s in sequences]


def test_a_contiguous_read_is_cached_by_sequence() -> None:
    cache = ReadCache()
    cache.add(Batch(_entries(5, 6, 7), "epoch"))

    hit = cache.lookup(6, 10, "epoch")

    assert hit is not None
    assert [e[1][b"d"] for e in hit.entries] == [b"6", b"7"]
    assert hit.previous == _entries(5)[0]
    assert cache.lookup(6, 10, "another epoch") is None
    assert cache.lookup(8, 10, "epoch") is None


def test_a_read_with_a_hole_is_cached_by_each_entry_s_own_sequence() -> None:
    # Another tool deleted sequence 6 (XDEL): the read skips it.
    cache = ReadCache()
    cache.add(Batch(_entries(5, 7, 8), "epoch"))

    assert cache.lookup(6, 10, "epoch") is None
    hit = cache.lookup(7, 10, "epoch")
    assert hit is not None
    assert [e[1][b"d"] for e in hit.entries] == [b"7", b"8"]


def test_an_entry_with_a_foreign_id_ends_the_cached_run() -> None:
    cache = ReadCache()
    cache.add(Batch([*_entries(1, 2), (b"1733300000000-0", {b"d": b"x"})], "epoch"))

    hit = cache.lookup(1, 10, "epoch")
    assert hit is not None
    assert [e[1][b"d"] for e in hit.entries] == [b"1", b"2"]
