"""Fixtures: every behaviour test runs on fakeredis and on a real server."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis

from hzreliable import ReliableTopicClient

from .async_facade import AsyncClientFacade, LoopThread
from .servers import (
    EXTERNAL_URL_VARIABLE,
    ExternalServer,
    RedisServer,
    redis_server_required,
)


def eventually(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def _need_redis_server() -> None:
    if shutil.which("redis-server") is None:
        if redis_server_required():
            pytest.fail("CI=true but redis-server is not on PATH; install it")
        pytest.skip("redis-server is not on PATH (required when CI=true)")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real server for the session; tests flush it before use. With
    HZRELIABLE_TEST_REDIS_URL set, the Redis it names instead."""
    external = os.environ.get(EXTERNAL_URL_VARIABLE)
    if external:
        yield ExternalServer(external)
        return
    _need_redis_server()
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def fresh_server() -> Iterator[RedisServer]:
    """A real server of the test's own, free to kill and restart."""
    _need_redis_server()
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """An empty Redis: fakeredis, or the real session server."""
    if request.param == "fakeredis":
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    else:
        server = request.getfixturevalue("redis_server")
        client = server.client()
        client.flushdb()
    yield client
    client.close()


@pytest.fixture(params=["sync", "asyncio"])
def api(request: pytest.FixtureRequest) -> str:
    """Which API a behaviour test drives: threads, or asyncio (through a
    facade with the threaded interface, see async_facade.py)."""
    return str(request.param)


class Clients:
    """Clients of one API ("sync" or "asyncio", the latter through a facade
    with the threaded interface), all shut down by :meth:`close`."""

    def __init__(self, api: str) -> None:
        self.loop = LoopThread() if api == "asyncio" else None
        self.made: list[Any] = []

    def make(self, redis_client: redis.Redis | None = None, **kwargs: Any) -> Any:
        """A client around ``redis_client``, or opened from ``url=``."""
        client: Any
        if self.loop is None:
            client = ReliableTopicClient(redis_client, **kwargs)
        else:
            client = AsyncClientFacade(self.loop, redis_client, **kwargs)
        self.made.append(client)
        return client

    def close(self) -> None:
        for client in self.made:
            client.shutdown()
        if self.loop is not None:
            self.loop.close()


@pytest.fixture
def make_client(backend: redis.Redis, api: str) -> Iterator[Callable[..., Any]]:
    """Make clients of the chosen API on the backend; all are shut down
    after the test."""
    clients = Clients(api)
    yield lambda **kwargs: clients.make(backend, **kwargs)
    clients.close()


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Any:
    return make_client()
