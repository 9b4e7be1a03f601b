"""
The benchmark's figures measured with two peer libraries on Redis Streams:
walrus (a thin, synchronous layer over redis-py) and FastStream's Redis
broker (asyncio).

Every function has the shape of bench/run.py's figures,
``(r: redis.Redis, n: int) -> None | float``, and returns its own elapsed
seconds so that connecting, deleting its keys and shutting down are not
counted: only the publishing loop, or consumption from its start to the n-th
message. Each contender writes only its own keys and deletes them first, so
rounds do not disturb one another.

Needs the optional packages ``walrus`` and ``faststream[redis]``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis
import walrus
from faststream.redis import RedisBroker, StreamSub
from walrus.containers import Stream as WalrusStream

from bench.run import DELIVER_STREAM, EVENT

WALRUS_STREAM = "bench-walrus"
FASTSTREAM_STREAM = "bench-faststream"
# Filled once by faststream_fill, read by every faststream_delivery round.
FASTSTREAM_DELIVER = "bench-faststream-deliver"
MAXLEN = 10_000  # the ring size of the other contenders
BATCH = 100
DELIVERY_TIMEOUT = 120.0


def _address(r: redis.Redis) -> tuple[str, int, int]:
    kwargs = r.connection_pool.connection_kwargs
    host = kwargs.get("host", "127.0.0.1")
    return host, kwargs.get("port", 6379), kwargs.get("db", 0)


def _url(r: redis.Redis) -> str:
    host, port, db = _address(r)
    return f"redis://{host}:{port}/{db}"


def _walrus_db(r: redis.Redis) -> walrus.Database:
    host, port, db = _address(r)
    return walrus.Database(host=host, port=port, db=db)


# walrus ----------------------------------------------------------------------


def walrus_publish(r: redis.Redis, n: int) -> float:
    """One ``Stream.add`` per message: an exact MAXLEN, like redis_publish."""
    db = _walrus_db(r)
    try:
        db.delete(WALRUS_STREAM)
        stream = db.Stream(WALRUS_STREAM)
        started = time.perf_counter()
        for _ in range(n):
            stream.add({"d": json.dumps(EVENT)}, maxlen=MAXLEN, approximate=False)
        return time.perf_counter() - started
    finally:
        db.close()


def walrus_publish_all(r: redis.Redis, n: int) -> float:
    """
    walrus has no batch publish. What a walrus user does instead: open the
    Database's own ``pipeline()`` (redis-py's, MULTI/EXEC by default, so the
    batch is atomic like hzreliable's publish_all) and put walrus's
    ``Stream.add`` on it, binding a walrus Stream to the pipeline; one
    round trip per 100 messages.
    """
    db = _walrus_db(r)
    try:
        db.delete(WALRUS_STREAM)
        started = time.perf_counter()
        for _ in range(n // BATCH):
            with db.pipeline() as pipe:
                stream = WalrusStream(pipe, WALRUS_STREAM)
                for _ in range(BATCH):
                    stream.add({"d": json.dumps(EVENT)}, maxlen=MAXLEN)
                pipe.execute()
        return time.perf_counter() - started
    finally:
        db.close()


def walrus_delivery(r: redis.Redis, n: int) -> float:
    """
    One consumer reading 100 entries per ``Stream.read`` and decoding each
    payload. It reads the topic stream redis_delivery reads (filled once by
    bench/run.py, never written here), so the two figures see the same bytes.
    """
    db = _walrus_db(r)
    try:
        stream = db.Stream(DELIVER_STREAM)
        last: bytes | str = "0-0"
        got = 0
        started = time.perf_counter()
        while got < n:
            entries = stream.read(count=BATCH, block=500, last_id=last)
            for entry_id, fields in entries:
                json.loads(fields[b"d"])
                last = entry_id
                got += 1
        return time.perf_counter() - started
    finally:
        db.close()


# FastStream ------------------------------------------------------------------


def _broker(r: redis.Redis) -> RedisBroker:
    # logger=None: by default FastStream writes two access-log lines to stdout
    # per consumed message, which would measure the terminal, not Redis.
    return RedisBroker(_url(r), logger=None)


async def _faststream_publish(r: redis.Redis, n: int) -> float:
    broker = _broker(r)
    client = await broker.connect()
    try:
        await client.delete(FASTSTREAM_STREAM)
        started = time.perf_counter()
        for _ in range(n):
            await broker.publish(EVENT, stream=FASTSTREAM_STREAM, maxlen=MAXLEN)
        return time.perf_counter() - started
    finally:
        await broker.stop()


def faststream_publish(r: redis.Redis, n: int) -> float:
    """One ``RedisBroker.publish(..., stream=...)`` per message (XADD MAXLEN ~)."""
    return asyncio.run(_faststream_publish(r, n))


async def _faststream_publish_all(r: redis.Redis, n: int) -> float:
    broker = _broker(r)
    client = await broker.connect()
    try:
        await client.delete(FASTSTREAM_STREAM)
        started = time.perf_counter()
        for _ in range(n // BATCH):
            async with client.pipeline() as pipe:
                for _ in range(BATCH):
                    await broker.publish(
                        EVENT, stream=FASTSTREAM_STREAM, maxlen=MAXLEN, pipeline=pipe
                    )
                await pipe.execute()
        return time.perf_counter() - started
    finally:
        await broker.stop()


def faststream_publish_all(r: redis.Redis, n: int) -> float:
    """
    FastStream's ``publish_batch`` writes only to lists (one RPUSH). For a
    stream it offers ``publish(..., pipeline=pipe)``, its documented way to
    send many messages in one round trip: 100 publishes on one redis-py
    asyncio pipeline (MULTI/EXEC, the default its ``Pipeline`` dependency
    uses), then ``execute()``.
    """
    return asyncio.run(_faststream_publish_all(r, n))


async def _faststream_fill(r: redis.Redis, n: int) -> None:
    broker = _broker(r)
    client = await broker.connect()
    try:
        await client.delete(FASTSTREAM_DELIVER)
        for start in range(0, n, BATCH):
            async with client.pipeline() as pipe:
                for _ in range(min(BATCH, n - start)):
                    await broker.publish(
                        EVENT, stream=FASTSTREAM_DELIVER, pipeline=pipe
                    )
                await pipe.execute()
    finally:
        await broker.stop()


def faststream_fill(r: redis.Redis, n: int) -> None:
    """
    Fills the stream faststream_delivery reads, once, up front, as bench/run.py
    fills the topic for the other delivery figures. FastStream's subscriber
    expects its own envelope (the ``__data__`` field), so it reads messages
    FastStream published, not the hzreliable topic.
    """
    asyncio.run(_faststream_fill(r, n))


async def _faststream_delivery(r: redis.Redis, n: int) -> float:
    broker = _broker(r)
    done = asyncio.Event()
    count = 0

    # batch=False: the handler is called per message, as hzreliable's
    # on_message is; the subscriber still reads 100 entries per XREAD.
    @broker.subscriber(
        stream=StreamSub(FASTSTREAM_DELIVER, last_id="0-0", max_records=BATCH)
    )
    async def handle(body: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    await broker.connect()
    try:
        started = time.perf_counter()
        await broker.start()
        await asyncio.wait_for(done.wait(), DELIVERY_TIMEOUT)
        return time.perf_counter() - started
    finally:
        await broker.stop()


def faststream_delivery(r: redis.Redis, n: int) -> float:
    """
    One stream subscriber (no consumer group, from the first entry, 100 per
    read) whose handler receives each message decoded from JSON into a dict,
    counting to n; timed from ``broker.start()`` to the n-th message.
    """
    return asyncio.run(_faststream_delivery(r, n))
