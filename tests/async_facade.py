"""
The asyncio API behind the threaded API's interface, so that every
behaviour test runs against both: coroutines run on an event loop in a
thread of their own, and each call waits for its result.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import fakeredis
import redis
import redis.asyncio

import hzreliable.asyncio as hz_async
from hzreliable import ReliableTopicConfig

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="test-event-loop", daemon=True
        )
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        # Tasks the client leaves behind (fakeredis runs each blocking
        # command in a task of its own) end here, not when the loop is freed.
        async def cancel_the_rest() -> None:
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self.run(cancel_the_rest(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def async_twin(client: redis.Redis) -> Any:
    """An asyncio client on the same server (or fake server) as ``client``."""
    kwargs = client.connection_pool.connection_kwargs
    if isinstance(client, fakeredis.FakeRedis):
        return fakeredis.FakeAsyncRedis(
            server=kwargs["server"], decode_responses=kwargs["decode_responses"]
        )
    return redis.asyncio.Redis(
        host=kwargs["host"],
        port=kwargs["port"],
        db=kwargs.get("db", 0),
        socket_timeout=kwargs.get("socket_timeout"),
        decode_responses=kwargs.get("decode_responses", False),
    )


class AsyncClientFacade:
    """Looks like hzreliable.ReliableTopicClient; is the asyncio client."""

    def __init__(
        self, runner: LoopThread, backend: redis.Redis | None, **kwargs: Any
    ) -> None:
        """The asyncio client on ``backend``'s server, or (with no backend)
        the one it opens itself from ``url=``."""
        self._runner = runner

        async def make() -> hz_async.ReliableTopicClient:
            if backend is None:
                return hz_async.ReliableTopicClient(**kwargs)
            return hz_async.ReliableTopicClient(async_twin(backend), **kwargs)

        self.inner = runner.run(make())
        self._facades: dict[int, TopicFacade] = {}

    @property
    def _block_ms(self) -> int:
        return self.inner._block_ms

    @_block_ms.setter
    def _block_ms(self, value: int) -> None:
        self.inner._block_ms = value

    def get_reliable_topic(
        self, name: Any, config: ReliableTopicConfig | None = None
    ) -> TopicFacade:
        topic = self._runner.run(self.inner.get_reliable_topic(name, config))
        facade = self._facades.get(id(topic))
        if facade is None or facade.inner is not topic:
            facade = self._facades[id(topic)] = TopicFacade(self._runner, topic)
        return facade

    def shutdown(self) -> None:
        self._runner.run(self.inner.shutdown())

    def __enter__(self) -> AsyncClientFacade:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


class TopicFacade:
    """Looks like hzreliable.ReliableTopicProxy; is the asyncio topic."""

    def __init__(self, runner: LoopThread, topic: hz_async.ReliableTopic) -> None:
        self._runner = runner
        self.inner = topic
        self.ringbuffer = RingFacade(runner, topic.ringbuffer)

    def __getattr__(self, name: str) -> Any:
        # Plain attributes and synchronous methods (name, config,
        # listener_error, _reader, _runners) come straight from the topic.
        return getattr(self.inner, name)

    def publish(self, message: Any, timeout: float | None = None) -> int | None:
        return self._runner.run(self.inner.publish(message, timeout))

    def publish_all(
        self, messages: Iterable[Any], timeout: float | None = None
    ) -> list[int]:
        return self._runner.run(self.inner.publish_all(messages, timeout))

    def add_listener(self, listener: Any) -> str:
        return self._runner.run(self.inner.add_listener(listener))

    def remove_listener(self, registration_id: Any) -> bool:
        return self._runner.run(self.inner.remove_listener(registration_id))

    def destroy(self) -> None:
        self._runner.run(self.inner.destroy())

    def get_local_topic_stats(self) -> Any:
        return self._runner.run(self.inner.get_local_topic_stats())


class RingFacade:
    def __init__(self, runner: LoopThread, ring: hz_async.AsyncRingbufferView):
        self._runner = runner
        self._ring = ring

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._ring, name)

        def call(*args: Any) -> Any:
            return self._runner.run(method(*args))

        return call
