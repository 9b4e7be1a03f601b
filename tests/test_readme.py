"""The README's example runs as written (on fakeredis instead of localhost)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio

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


def test_the_readme_asyncio_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "hzreliable.asyncio" in b)
    server = fakeredis.FakeServer()
    monkeypatch.setattr(
        redis.asyncio.Redis,
        "from_url",
        staticmethod(lambda url, **_: fakeredis.FakeAsyncRedis(server=server)),
    )
    namespace: dict[str, Any] = {}
    exec(compile(example, str(README), "exec"), namespace)

    async def serve() -> tuple[list[Any], list[Any], dict[str, str]]:
        app = SimpleNamespace(state=SimpleNamespace())
        async with namespace["lifespan"](app):
            first = await namespace["create_order"](
                app, {"order_id": "o-1", "type": "OrderCreated"}
            )
            second = await namespace["create_order"](
                app, {"order_id": "o-1", "type": "OrderShipped"}
            )
            history = await namespace["replay"](app)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while namespace["projection"].get("o-1") != "OrderShipped":
                assert loop.time() < deadline, "the projection never caught up"
                await asyncio.sleep(0.01)
        return [first, second], history, dict(namespace["projection"])

    replies, history, projection = asyncio.run(serve())

    assert replies == [{"sequence": 0}, {"sequence": 1}]
    assert [event["type"] for event in history] == ["OrderCreated", "OrderShipped"]
    assert projection == {"o-1": "OrderShipped"}
