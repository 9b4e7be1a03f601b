"""What only the asyncio API has: async listeners, the message iterator, and
an event loop that never stalls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio

from hzreliable import (
    FROM_OLDEST,
    ReliableTopicConfig,
    StaleSequenceException,
    TopicResetException,
)
from hzreliable.asyncio import (
    ReliableMessageListener,
    ReliableTopic,
    ReliableTopicClient,
    TopicMessage,
)

from .async_facade import async_twin
from .conftest import eventually
from .servers import RedisServer

pytestmark = pytest.mark.timeout(60)


async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    """Poll (yielding to the loop) until ``predicate`` holds, or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s")
        await asyncio.sleep(0.005)


def run_with(
    backend: redis.Redis, scenario: Callable[[ReliableTopicClient], Awaitable[None]]
) -> None:
    async def main() -> None:
        async with ReliableTopicClient(async_twin(backend)) as client:
            await scenario(client)

    asyncio.run(main())


class AsyncRecorder(ReliableMessageListener[Any]):
    """Every method is ``async def``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.cancelled = 0

    async def retrieve_initial_sequence(self) -> int:
        await asyncio.sleep(0)
        return FROM_OLDEST

    async def is_loss_tolerant(self) -> bool:
        return False

    async def store_sequence(self, sequence: int) -> None:
        await asyncio.sleep(0)
        self.calls.append(("store", sequence))

    async def on_message(self, message: TopicMessage[Any]) -> None:
        await asyncio.sleep(0)
        self.calls.append(("message", message.sequence))
        if message.sequence == 1:
            raise ValueError("not terminal")

    async def is_terminal(self, error: BaseException) -> bool:
        return False

    async def on_cancel(self) -> None:
        await asyncio.sleep(0)
        self.cancelled += 1


def test_listener_methods_may_all_be_coroutines(backend: redis.Redis) -> None:
    async def scenario(client: ReliableTopicClient) -> None:
        topic = await client.get_reliable_topic("async-methods")
        await topic.publish_all(["a", "b", "c"])
        recorder = AsyncRecorder()

        registration = await topic.add_listener(recorder)

        await until(lambda: len(recorder.calls) == 6)
        assert recorder.calls == [
            ("store", 0),
            ("message", 0),
            ("store", 1),
            ("message", 1),
            ("store", 2),
            ("message", 2),
        ]
        assert await topic.remove_listener(registration) is True
        assert recorder.cancelled == 1

    run_with(backend, scenario)


def test_an_async_callable_gets_new_messages(backend: redis.Redis) -> None:
    async def scenario(client: ReliableTopicClient) -> None:
        topic = await client.get_reliable_topic("async-callable")
        await topic.publish("old")
        got: list[Any] = []

        async def handle(message: TopicMessage[Any]) -> None:
            got.append(message.message)

        await topic.add_listener(handle)
        await topic.publish("new")

        await until(lambda: got == ["new"])

    run_with(backend, scenario)


def test_the_iterator_replays_and_follows_in_order(backend: redis.Redis) -> None:
    async def scenario(client: ReliableTopicClient) -> None:
        topic = await client.get_reliable_topic("iterate")
        await topic.publish_all(range(3))
        seen: list[int] = []

        async def publish_later() -> None:
            await until(lambda: len(seen) == 3)
            await topic.publish_all(range(3, 5))

        later = asyncio.create_task(publish_later())
        async for message in topic.messages(start=FROM_OLDEST):
            seen.append(message.message)
            if len(seen) == 5:
                break
        await later

        assert seen == [0, 1, 2, 3, 4]
        await released(backend, client, topic)

    run_with(backend, scenario)


def _held(
    backend: redis.Redis, client: ReliableTopicClient, topic: ReliableTopic
) -> list[str]:
    """What an iterator could still hold once it is left: the empty list
    when everything was released."""
    held = []
    if _checked_out(client):
        held.append("a connection checked out of the pool")
    if topic._reader.flights:
        held.append(f"shared reads at {sorted(topic._reader.flights)}")
    current = asyncio.current_task()
    tasks = [
        t.get_name()
        for t in asyncio.all_tasks()
        if t is not current and not t.done() and "hzreliable" in t.get_name()
    ]
    if tasks:
        held.append(f"tasks {tasks}")
    if _blocked_on_server(backend):
        held.append("a read still blocked on the server")
    return held


def _checked_out(client: ReliableTopicClient) -> set[Any]:
    """Connections out of the client's pool, but for those its wire keeps
    idle for its own scripts (see _wire.py)."""
    single: Any = client.redis  # never a cluster client here
    pool = single.connection_pool
    kept = set(client._wire._idle) if client._wire is not None else set()
    return set(pool._in_use_connections) - kept


def _blocked_on_server(backend: redis.Redis) -> int:
    # fakeredis has no INFO; on it the pool's view is all there is.
    if isinstance(backend, fakeredis.FakeRedis):
        return 0
    return int(backend.info("clients")["blocked_clients"])


async def released(
    backend: redis.Redis, client: ReliableTopicClient, topic: ReliableTopic
) -> None:
    """Wait until nothing is held, or fail naming what is. Polled because a
    generator left by ``break`` is closed later, by a task of the loop."""
    try:
        await until(lambda: not _held(backend, client, topic), timeout=5)
    except AssertionError:
        pytest.fail(f"still held: {_held(backend, client, topic)}")


async def blocked_in_read(
    backend: redis.Redis, client: ReliableTopicClient, topic: ReliableTopic
) -> None:
    """Wait until an iterator waits in a read: its shared read registered, a
    connection out of the pool for it and, on a real server, the XREAD
    blocked there."""

    def blocked() -> bool:
        if not (topic._reader.flights and _checked_out(client)):
            return False
        fake = isinstance(backend, fakeredis.FakeRedis)
        return fake or _blocked_on_server(backend) > 0

    await until(blocked)


# Far longer than any test here: a read still waiting on the server after
# its iterator was left is visible, not ended by its own timeout.
LONG_BLOCK_MS = 60_000


@pytest.mark.parametrize("how", ["break", "cancel", "wait_for"])
def test_leaving_the_iterator_releases_everything(
    backend: redis.Redis, how: str
) -> None:
    async def scenario(client: ReliableTopicClient) -> None:
        client._block_ms = LONG_BLOCK_MS
        topic = await client.get_reliable_topic(f"leave-{how}")
        await topic.publish_all(range(3))
        seen: list[int] = []

        if how == "break":
            async for message in topic.messages(start=FROM_OLDEST):
                seen.append(message.message)
                if len(seen) == 3:
                    break
        elif how == "cancel":
            task = asyncio.create_task(_consume(topic, seen))
            await until(lambda: len(seen) == 3)
            await blocked_in_read(backend, client, topic)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            iterator = aiter(topic.messages(start=FROM_OLDEST))
            for _ in range(3):
                seen.append((await anext(iterator)).message)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(anext(iterator), 0.3)

        assert seen == [0, 1, 2]
        await released(backend, client, topic)
        # The connection that was cut off mid-read must not hand its late
        # reply to the next command.
        assert await topic.publish("next") == 3
        following = topic.messages(start=3)
        assert (await anext(aiter(following))).message == "next"

    run_with(backend, scenario)


async def _consume(topic: ReliableTopic, seen: list[Any]) -> None:
    async for message in topic.messages(start=FROM_OLDEST):
        seen.append(message.message)


def test_the_iterator_of_a_shut_down_client_raises(backend: redis.Redis) -> None:
    async def scenario(client: ReliableTopicClient) -> None:
        topic = await client.get_reliable_topic("iter-shut")
        await topic.publish_all(range(3))
        started = aiter(topic.messages(start=FROM_OLDEST))
        assert (await anext(started)).message == 0
        not_started = aiter(topic.messages(start=FROM_OLDEST))

        await client.shutdown()

        # Messages already read from Redis are not handed out either: a
        # listener's delivery stops at once on shutdown too.
        with pytest.raises(RuntimeError, match="shut down"):
            await anext(started)
        with pytest.raises(RuntimeError, match="shut down"):
            await anext(not_started)

    run_with(backend, scenario)


def test_an_iterator_waiting_in_a_read_raises_on_shutdown(
    backend: redis.Redis,
) -> None:
    async def scenario(client: ReliableTopicClient) -> None:
        topic = await client.get_reliable_topic("iter-shut-waiting")
        waiting = asyncio.create_task(_consume(topic, []))
        await blocked_in_read(backend, client, topic)

        await client.shutdown()

        # Bounded by one blocking read (0.5 s) where the caller's own
        # connection is not closed by the shutdown.
        with pytest.raises(RuntimeError, match="shut down"):
            await asyncio.wait_for(waiting, 5)

    run_with(backend, scenario)


def test_the_iterator_from_beyond_the_tail_raises_unless_tolerant(
    backend: redis.Redis,
) -> None:
    async def scenario(client: ReliableTopicClient) -> None:
        config = ReliableTopicConfig(capacity=3)
        topic = await client.get_reliable_topic("iter-beyond", config)
        await topic.publish_all(range(10))

        # tail + 1 is the next message to come; tail + 2 is nowhere.
        with pytest.raises(TopicResetException) as caught:
            await anext(aiter(topic.messages(start=11)))
        tolerant = [
            m.sequence
            async for m in _take(topic.messages(start=11, loss_tolerant=True), 3)
        ]

        assert caught.value.sequence == 11
        assert "beyond the tail 9" in str(caught.value)
        assert tolerant == [7, 8, 9]

    run_with(backend, scenario)


def test_the_iterator_raises_on_loss_unless_tolerant(backend: redis.Redis) -> None:
    async def scenario(client: ReliableTopicClient) -> None:
        config = ReliableTopicConfig(capacity=3)
        topic = await client.get_reliable_topic("iter-loss", config)
        await topic.publish_all(range(10))

        with pytest.raises(StaleSequenceException) as caught:
            async for _ in topic.messages(start=2):
                pass
        tolerant = [
            m.message
            async for m in _take(topic.messages(start=2, loss_tolerant=True), 3)
        ]

        assert caught.value.lost == 5
        assert tolerant == [7, 8, 9]

    run_with(backend, scenario)


async def _take(messages: Any, count: int) -> Any:
    async for message in messages:
        yield message
        count -= 1
        if count == 0:
            return


class Ticker:
    """A task that wants to run every 10 ms, and the longest it waited."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.last = 0.0
        self.longest = 0.0

    def start(self) -> None:
        self.last = time.monotonic()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.longest = max(self.longest, now - self.last)
            self.last = now

    async def during(self, work: Awaitable[Any]) -> tuple[Any, float]:
        """``work``'s result and the longest gap between ticks meanwhile."""
        self.longest = 0.0
        result = await work
        await asyncio.sleep(0.02)  # the tick due at the end counts too
        return result, self.longest


# A listener's blocking read lasts up to 0.5 s and a BLOCK wait here 0.4 s:
# any of them on the loop would leave a gap that long.
STALL = 0.15


def test_waiting_listeners_and_blocked_publishers_never_stall_the_loop(
    backend: redis.Redis,
) -> None:
    async def scenario(client: ReliableTopicClient) -> None:
        ticker = Ticker()
        ticker.start()
        config = ReliableTopicConfig(capacity=2, time_to_live=0.4)
        topic = await client.get_reliable_topic("loop", config)
        got: list[Any] = []
        await topic.add_listener(lambda m: got.append(m.message))
        await topic.publish_all(["a", "b"])

        # A full ring under BLOCK: the publish waits ~0.4 s for retention.
        sequence, gap = await ticker.during(topic.publish("c", timeout=10))

        assert sequence == 2
        assert gap < STALL
        _, idle_gap = await ticker.during(asyncio.sleep(0.6))
        assert idle_gap < STALL  # listeners blocked in XREAD meanwhile
        await until(lambda: got == ["a", "b", "c"])

    run_with(backend, scenario)


@pytest.mark.redis
def test_a_server_restart_never_stalls_the_loop_and_loses_nothing(
    fresh_server: RedisServer,
) -> None:
    fresh_server.kill()
    fresh_server.extra = ["--appendonly", "yes", "--appendfsync", "always"]
    fresh_server.start()

    async def scenario() -> None:
        async with ReliableTopicClient.from_url(fresh_server.url) as client:
            ticker = Ticker()
            ticker.start()
            topic: ReliableTopic = await client.get_reliable_topic("restart")
            got: list[Any] = []
            recorder = AsyncRecorderAll(got)
            await topic.add_listener(recorder)
            await topic.publish_all(range(5))
            await until(lambda: len(got) == 5)

            fresh_server.kill()
            _, down_gap = await ticker.during(asyncio.sleep(0.5))
            fresh_server.start()
            _, up_gap = await ticker.during(topic.publish_all(range(5, 10)))

            _, catching_up_gap = await ticker.during(
                until(lambda: len(got) == 10, timeout=30)
            )
            assert got == list(range(10))
            assert max(down_gap, up_gap, catching_up_gap) < STALL
            assert recorder.cancelled == 0

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_killed_connection_loses_nothing_for_async_listeners(
    fresh_server: RedisServer,
) -> None:
    async def scenario() -> None:
        async with ReliableTopicClient.from_url(fresh_server.url) as client:
            topic = await client.get_reliable_topic("killed")
            got: list[Any] = []
            await topic.add_listener(AsyncRecorderAll(got))
            await topic.publish_all(range(5))
            await until(lambda: len(got) == 5)

            fresh_server.client().client_kill_filter(_type="normal", skipme=True)
            for i in range(5, 10):
                await topic.publish(i)

            await until(lambda: len(got) == 10, timeout=30)
            assert got == list(range(10))

    asyncio.run(scenario())


class AsyncRecorderAll(ReliableMessageListener[Any]):
    def __init__(self, got: list[Any]) -> None:
        self.got = got
        self.cancelled = 0

    def retrieve_initial_sequence(self) -> int:
        return FROM_OLDEST

    async def on_message(self, message: TopicMessage[Any]) -> None:
        self.got.append(message.message)

    def on_cancel(self) -> None:
        self.cancelled += 1


def _decoding_twin(backend: redis.Redis) -> Any:
    """An asyncio client on ``backend``'s server that decodes replies."""
    kwargs = backend.connection_pool.connection_kwargs
    if isinstance(backend, fakeredis.FakeRedis):
        return fakeredis.FakeAsyncRedis(server=kwargs["server"], decode_responses=True)
    return redis.asyncio.Redis(
        host=kwargs["host"], port=kwargs["port"], decode_responses=True
    )


def test_a_decoding_client_is_accepted(backend: redis.Redis) -> None:
    async def main() -> None:
        decoding = _decoding_twin(backend)
        async with ReliableTopicClient(decoding) as client:
            topic = await client.get_reliable_topic("decoded")
            got: list[Any] = []
            await topic.add_listener(AsyncRecorderAll(got))

            # Not UTF-8: a decoding connection would fail on this payload.
            await topic.publish(b"\xff\xfe")
            await topic.publish("text")

            expected = [b"\xff\xfe", "text"]
            read = await topic.ringbuffer.read_many(0, 2)
            assert [m.message for m in read] == expected
            iterated = _take(topic.messages(start=FROM_OLDEST), 2)
            assert [m.message async for m in iterated] == expected
            await until(lambda: got == expected)
        # Only the client hzreliable opened for itself was closed.
        assert await decoding.ping()
        await decoding.aclose()

    asyncio.run(main())


@pytest.mark.redis
def test_a_client_from_redis_url_closes_its_own_connections(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    probe = redis_server.client()
    probe.flushdb()

    def connected() -> set[str]:
        return {c["id"] for c in probe.client_list()}

    async def main() -> set[str]:
        before = await asyncio.to_thread(connected)
        async with ReliableTopicClient() as client:
            topic = await client.get_reliable_topic("env")
            # A listener waiting in a read holds a connection of its own.
            await topic.add_listener(lambda m: None)
            assert await topic.publish("x") == 0
            first = _take(topic.messages(start=FROM_OLDEST), 1)
            assert [m.message async for m in first] == ["x"]
            opened = await asyncio.to_thread(connected) - before
            assert opened
        return opened

    opened = asyncio.run(main())

    eventually(lambda: not connected() & opened, what="connections to close")
    assert asyncio.run(_size_at(redis_server.url, "env")) == 1


async def _size_at(url: str, name: str) -> int:
    async with ReliableTopicClient.from_url(url) as client:
        topic = await client.get_reliable_topic(name)
        return await topic.ringbuffer.size()
