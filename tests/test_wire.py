"""
The short path to Redis: used only for redis-py's own connections, speaking
RESP exactly as redis-py does, and dropping a connection a failure left in an
unknown state.
"""

from __future__ import annotations

import asyncio

import fakeredis
import pytest
import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ResponseError
from redis.retry import Retry

from hzreliable import ReliableTopicClient
from hzreliable._wire import AsyncWire, Wire, pack

from .servers import RedisServer


def test_pack_writes_a_resp_array_of_bulk_strings() -> None:
    assert pack(["SET", "k", 12, b"\x00\xff"]) == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$2\r\n\x00\xff\r\n"
    )


def test_fakeredis_and_cluster_clients_keep_redis_py_s_path() -> None:
    assert Wire.of(fakeredis.FakeRedis()) is None
    assert AsyncWire.of(fakeredis.FakeAsyncRedis()) is None
    cached = redis.Redis(protocol=3, cache_config=redis.cache.CacheConfig())
    assert Wire.of(cached) is None


@pytest.mark.redis
def test_a_real_client_publishes_on_the_wire(redis_server: RedisServer) -> None:
    r = redis_server.client()
    r.flushdb()
    with ReliableTopicClient(r) as client:
        assert client._wire is not None
        topic = client.get_reliable_topic("wired")

        assert [topic.publish(n) for n in range(3)] == [0, 1, 2]
        assert [m.message for m in topic.ringbuffer.read_many(0, 3)] == [0, 1, 2]
    r.close()


@pytest.mark.redis
def test_an_error_reply_keeps_the_connection_and_a_failure_drops_it(
    redis_server: RedisServer,
) -> None:
    r = redis_server.client()
    wire = Wire.of(r)
    assert wire is not None

    with pytest.raises(ResponseError, match="unknown command"):
        wire.call(pack(["NO-SUCH-COMMAND"]))
    (kept,) = wire._idle
    assert kept._sock is not None  # an error reply is a complete reply

    killed = wire.call(pack(["CLIENT", "ID"]))
    stale = kept._sock
    r.client_kill_filter(_id=str(killed))
    # The kept connection was closed while idle: it reconnects, once more.
    assert wire.call(pack(["CLIENT", "ID"])) != killed
    assert kept._sock is not stale  # dropped, so nothing stale is read later
    assert wire._idle == [kept]  # and no second connection is held for it
    wire.close()
    r.close()


@pytest.mark.redis
def test_a_failure_on_a_new_connection_propagates(fresh_server: RedisServer) -> None:
    r = fresh_server.client()
    wire = Wire.of(r)
    assert wire is not None
    assert wire.call(pack(["PING"])) == b"PONG"
    (kept,) = wire._idle
    fresh_server.kill()

    with pytest.raises(redis.ConnectionError):
        wire.call(pack(["PING"]))
    assert kept._sock is None  # dropped, so nothing stale is read later
    assert wire._idle == [kept]
    wire.close()
    r.close()


@pytest.mark.redis
def test_shutdown_hands_the_wire_s_connections_back(
    redis_server: RedisServer,
) -> None:
    # Without command retries of its own, the caller's client is used as it
    # is (see test_a_retrying_client_gets_a_private_pool_closed_on_shutdown).
    r = redis_server.client(retry=Retry(NoBackoff(), 0))
    client = ReliableTopicClient(r)
    assert client.redis is r
    client.get_reliable_topic("handed-back").publish("x")
    in_use = len(r.connection_pool._in_use_connections)
    assert in_use >= 1

    client.shutdown()

    assert len(r.connection_pool._in_use_connections) == in_use - 1
    r.close()


@pytest.mark.redis
def test_the_async_wire_survives_a_cancelled_call(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        r = redis.asyncio.Redis.from_url(redis_server.url)
        wire = AsyncWire.of(r)
        assert wire is not None
        blocked = asyncio.ensure_future(wire.call(pack(["BLPOP", "never-filled", 10])))
        while not wire._pool._in_use_connections:
            await asyncio.sleep(0.005)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked

        # The cancelled call's reply must not be taken for the next one's.
        assert await wire.call(pack(["ECHO", "after"])) == b"after"
        await wire.close()
        await r.aclose()

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_retrying_client_gets_a_private_pool_closed_on_shutdown(
    redis_server: RedisServer,
) -> None:
    # A client as users make one, with redis-py's default retries.
    r = redis.Redis(host=redis_server.host, port=redis_server.port, socket_timeout=3)
    client = ReliableTopicClient(r)
    private = client.redis
    assert isinstance(private, redis.Redis)
    assert private is not r
    kwargs = private.connection_pool.connection_kwargs
    assert kwargs["retry"].get_retries() == 0
    assert kwargs["socket_timeout"] == 3  # the caller's options otherwise
    client.get_reliable_topic("private").publish("x")
    assert private.connection_pool._in_use_connections

    client.shutdown()

    pool = private.connection_pool
    assert not pool._in_use_connections
    assert all(c._sock is None for c in pool._available_connections)
    assert r.connection_pool.connection_kwargs["retry"].get_retries() > 0
    assert r.ping()
    r.close()


@pytest.mark.redis
def test_the_private_pool_keeps_the_caller_s_pool_limits(
    redis_server: RedisServer,
) -> None:
    pool: redis.BlockingConnectionPool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
        host=redis_server.host,
        port=redis_server.port,
        max_connections=3,
        timeout=7,
        retry=Retry(ExponentialBackoff(), 3),  # so hzreliable makes its own pool
    )
    r = redis.Redis(connection_pool=pool)
    client = ReliableTopicClient(r)
    private = client.redis
    assert isinstance(private, redis.Redis)

    assert type(private.connection_pool) is redis.BlockingConnectionPool
    assert private.connection_pool is not pool
    assert private.connection_pool.max_connections == 3
    assert private.connection_pool.timeout == 7
    assert client.get_reliable_topic("limited").publish("x") == 0
    client.shutdown()
    r.close()
