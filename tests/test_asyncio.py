"""What only the asyncio API has: async listeners, the message iterator, and
an event loop that never stalls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from hzreliable import FROM_OLDEST, ReliableTopicConfig, StaleSequenceException
from hzreliable.asyncio import (
    ReliableMessageListener,
    ReliableTopic,
    ReliableTopicClient,
    TopicMessage,
)

from .async_facade import async_twin
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
        assert await _live_tasks() == set()

    run_with(backend, scenario)


async def _live_tasks() -> set[str]:
    current = asyncio.current_task()
    return {
        t.get_name()
        for t in asyncio.all_tasks()
        if t is not current and not t.done() and "hzreliable" in t.get_name()
    }


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
