"""The README's example runs as written (on fakeredis instead of localhost)."""

from __future__ import annotations

import re
from pathlib import Path

import fakeredis
import pytest
import redis

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_example_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    server = fakeredis.FakeServer()
    monkeypatch.setattr(redis, "Redis", lambda: fakeredis.FakeRedis(server=server))

    exec(compile(block.group(1), str(README), "exec"), {})

    # The listener replays from the oldest message, so what it printed before
    # shutdown is a prefix of the three messages, in order.
    printed = capsys.readouterr().out.splitlines()
    expected = [
        "0 {'type': 'OrderCreated', 'order_id': 'order-123'}",
        "1 {'n': 1}",
        "2 {'n': 2}",
    ]
    assert printed == expected[: len(printed)]
    stream = fakeredis.FakeRedis(server=server).xlen("hzreliable:{orders}:stream")
    assert stream == 3
