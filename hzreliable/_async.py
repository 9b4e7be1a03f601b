"""The asyncio API: the same topic, rules and scripts, without threads."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from ._client import (
    JOIN_TIMEOUT,
    URL_OPTIONS,
    block_ms,
    private_twin,
    resolve_url,
    socket_timeout_of,
)
from ._cluster import queue_read, route
from ._codec import Codec, JsonCodec
from ._config import ReliableTopicConfig
from ._core import (
    PUBLISH_RETRIES,
    TopicCore,
    check_read_range,
    decode_all,
    is_terminal_verdict,
    log_listener_end,
    not_published,
    remaining_capacity,
    start_cursor,
)
from ._errors import MessageDecodeError
from ._listener import (
    FROM_LATEST,
    ReliableMessageListener,
    TopicMessage,
    as_listener,
    check_initial_sequence,
)
from ._protocol import (
    Cursor,
    RingState,
    TopicKeys,
    as_text,
    check_batch,
    check_replication,
    check_topic_name,
    entry_id,
    foreign_entry,
    new_epoch,
    read_publish_reply,
    ring_settings,
    same_settings,
)
from ._reading import Batch, ReadCache, batch_of
from ._retry import RETRYABLE, Backoff
from ._scripts import ENSURE, PUBLISH, STATE, LuaScript
from ._stats import LocalTopicStats
from ._wire import AsyncWire, pack

logger = logging.getLogger(__name__)

__all__ = ["AsyncRingbufferView", "ReliableTopic", "ReliableTopicClient"]


async def _call(function: Any, *args: Any) -> Any:
    """Call a listener method that may be plain or ``async def``."""
    result = function(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class ReliableTopicClient:
    """
    Entry point of the asyncio API.

    Wraps your ``redis.asyncio.Redis``, ``redis.asyncio.cluster.RedisCluster``
    (or ``fakeredis.FakeAsyncRedis``), or opens a ``Redis`` from ``url``, else
    ``REDIS_URL``, else ``redis://localhost:6379/0``. Use ``async with`` to
    shut down on exit.
    """

    def __init__(
        self,
        redis: Redis | RedisCluster | None = None,
        *,
        url: str | None = None,
        codec: Codec | None = None,
    ) -> None:
        if redis is not None and url is not None:
            raise ValueError("pass either a redis client or a url, not both")
        self._owned: list[Redis | RedisCluster] = []
        if redis is None:
            redis = Redis.from_url(resolve_url(url), **URL_OPTIONS)
            self._owned.append(redis)
        twin = private_twin(redis)
        if twin is not None:
            self._owned.append(twin)
        self._redis: Redis | RedisCluster = twin or redis
        self._codec: Codec = codec or JsonCodec()
        self._wire = AsyncWire.of(self._redis)
        self._block_ms = block_ms(socket_timeout_of(self._redis))
        self.join_timeout = JOIN_TIMEOUT
        self._closed = asyncio.Event()
        self._topics: dict[str, ReliableTopic] = {}
        self._publisher = uuid.uuid4().hex[:16]
        self._publishers = itertools.count()
        self._idle_tokens: list[tuple[str, itertools.count[int]]] = []

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> ReliableTopicClient:
        """Open a client on ``url`` (``redis://``, ``rediss://``, ``unix://``)."""
        return cls(url=url, **kwargs)

    @property
    def redis(self) -> Redis | RedisCluster:
        """The Redis client in use (bytes responses)."""
        return self._redis

    async def __aenter__(self) -> ReliableTopicClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    def __repr__(self) -> str:
        state = "shut down" if self._closed.is_set() else "open"
        return f"<asyncio ReliableTopicClient {state}, {len(self._topics)} topics>"

    async def get_reliable_topic(
        self, name: str, config: ReliableTopicConfig | None = None
    ) -> ReliableTopic:
        """Get or create the topic ``name``; the rules are those of the
        threaded :meth:`hzreliable.ReliableTopicClient.get_reliable_topic`."""
        self._check_open()
        check_topic_name(name)
        if config is not None and not isinstance(config, ReliableTopicConfig):
            raise TypeError(
                f"config must be a ReliableTopicConfig, not {type(config).__name__}"
            )
        existing = self._topics.get(name)
        if existing is not None:
            if config is None or same_settings(name, config, existing.config):
                return existing
            raise ValueError(
                f"topic {name!r} is already open in this client with another "
                "config; destroy() it or use the same config"
            )
        wanted = config or ReliableTopicConfig()
        stored = await self._script(
            ENSURE,
            [TopicKeys.of(name).meta],
            [wanted.capacity, wanted.ttl_us, new_epoch()],
        )
        settled = ring_settings(name, config, stored)
        topic = ReliableTopic(self, name, settled, str(stored[2], "utf-8"))
        return self._topics.setdefault(name, topic)

    async def shutdown(self) -> None:
        """End every listener (``on_cancel`` runs), wait briefly for their
        tasks, and close the connections this client opened. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        topics = list(self._topics.values())
        self._topics.clear()
        runners = [runner for topic in topics for runner in topic._stop_all()]
        await _join(runners, self.join_timeout)
        if self._wire is not None:
            await self._wire.close()
        for owned in self._owned:
            await owned.aclose()

    # ---------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise RuntimeError("the ReliableTopicClient was shut down")

    def _forget(self, topic: ReliableTopic) -> None:
        if self._topics.get(topic.name) is topic:
            del self._topics[topic.name]

    def _take_token(self) -> tuple[str, itertools.count[int]]:
        """A publisher id no other in-flight publish uses, so that the
        script's check of (id, counter) recognises exactly its own resends."""
        if self._idle_tokens:
            return self._idle_tokens.pop()
        return f"{self._publisher}.{next(self._publishers)}", itertools.count(1)

    async def _replicas_acked(self, key: str, config: ReliableTopicConfig) -> int:
        """WAIT for the replicas of the node that holds ``key``."""
        return await self._redis.wait(
            config.replicas_to_ack,
            round(config.replica_ack_timeout * 1000),
            **route(self._redis, key),
        )

    async def _script(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._evalsha(script, keys, args)
        except NoScriptError:
            redis: Any = self._redis  # redis-py leaves execute_command untyped
            await redis.execute_command(
                "SCRIPT LOAD", script.source, **route(redis, keys[0])
            )
            return await self._evalsha(script, keys, args)

    async def _evalsha(
        self, script: LuaScript, keys: list[str], args: list[Any]
    ) -> Any:
        if self._wire is not None:
            command = pack(["EVALSHA", script.sha, len(keys), *keys, *args])
            return await self._wire.call(command)
        return await self._redis.evalsha(script.sha, len(keys), *keys, *args)


class ReliableTopic(TopicCore["_Runner"]):
    """
    A topic for asyncio code: every call that talks to Redis is a coroutine.
    Delivery, ordering, loss, error and cancel rules are those of the
    threaded :class:`hzreliable.ReliableTopicProxy`.
    """

    def __init__(
        self,
        client: ReliableTopicClient,
        name: str,
        config: ReliableTopicConfig,
        epoch: str,
    ) -> None:
        super().__init__(name, config, epoch)
        self._client = client
        self._reader = _SharedReader(self)
        self.ringbuffer = AsyncRingbufferView(self)
        """A read-only view of the ring behind this topic (coroutines)."""

    # ------------------------------------------------------------ publishing

    async def publish(self, message: Any, timeout: float | None = None) -> int | None:
        """Publish one message; see the threaded ``publish``. Waiting under
        BLOCK never blocks the event loop."""
        sequences = await self._publish([message], timeout)
        return sequences[0] if sequences else None

    async def publish_all(
        self, messages: Iterable[Any], timeout: float | None = None
    ) -> list[int]:
        """Publish a batch atomically; see the threaded ``publish_all``."""
        batch = list(messages)
        if not batch:
            return []
        check_batch(len(batch), self._config)
        return await self._publish(batch, timeout)

    async def _publish(self, messages: list[Any], timeout: float | None) -> list[int]:
        client = self._client
        client._check_open()
        deadline = self._check_timeout(timeout)
        publisher, counter = client._take_token()
        try:
            args = self._publish_args(
                client._codec, (publisher, next(counter)), messages
            )
            return await self._store(args, deadline, timeout)
        finally:
            client._idle_tokens.append((publisher, counter))

    async def _store(
        self, args: list[Any], deadline: float | None, timeout: float | None
    ) -> list[int]:
        client = self._client
        config = self._config
        backoff = None
        while True:
            try:
                reply = await self._script(PUBLISH, args)
            except RETRYABLE as error:
                backoff = backoff or Backoff(f"topic {self._name!r}: publish")
                if backoff.failures >= PUBLISH_RETRIES:
                    raise
                await self._wait_closed(backoff.next_delay(error))
                continue
            except Exception:
                # shutdown() closes the connections under a publish in flight,
                # which fails in whatever way that leaves it: say why instead.
                client._check_open()
                raise
            outcome = read_publish_reply(self._name, config, reply)
            if outcome.sequences is not None:
                self._published_now(outcome.sequences)
                if config.replicas_to_ack and outcome.sequences:
                    acked = await client._replicas_acked(self._keys.stream, config)
                    check_replication(self._name, config, outcome.sequences, acked)
                return outcome.sequences
            await self._wait_closed(self._pause(outcome, deadline, timeout))

    async def _wait_closed(self, seconds: float) -> None:
        """Sleep, but wake (and raise) when the client shuts down."""
        try:
            await asyncio.wait_for(self._client._closed.wait(), seconds)
        except asyncio.TimeoutError:
            return
        self._client._check_open()

    # ------------------------------------------------------------- listening

    async def add_listener(self, listener: ReliableMessageListener[Any] | Any) -> str:
        """
        Register a listener and return its registration id. Its methods may
        be plain or ``async def``; a plain or async callable is accepted too
        and gets only messages published after this call returns.
        """
        self._client._check_open()
        reliable = as_listener(listener)
        requested = check_initial_sequence(
            await _call(reliable.retrieve_initial_sequence)
        )
        tolerant = bool(await _call(reliable.is_loss_tolerant))
        state = RingState.parse(await self._state())
        cursor, problem = start_cursor(
            self._name, tolerant, requested, state, self._epoch
        )
        registration_id = str(uuid.uuid4())
        runner = _Runner(self, registration_id, reliable, cursor)
        with self._lock:
            self._issued.add(registration_id)
            self._runners[registration_id] = runner
        if problem is not None:
            runner.error = problem
            await runner.finish()
        else:
            runner.start()
        return registration_id

    async def remove_listener(self, registration_id: str) -> bool:
        """Stop a listener: True the first time, False once it is gone.
        Delivery stops before the next message, even from ``on_message``."""
        with self._lock:
            runner = self._runners.pop(self._check_issued(registration_id), None)
        if runner is None:
            return False
        runner.stop()
        if runner.task is not asyncio.current_task():
            await _join([runner], self._client.join_timeout)
        return True

    async def messages(
        self, start: int = FROM_LATEST, *, loss_tolerant: bool = False
    ) -> AsyncIterator[TopicMessage[Any]]:
        """
        Iterate over the topic's messages, in order, forever.

        ``start`` is an initial sequence as for a listener (fixed when the
        iteration begins). A gap raises :class:`StaleSequenceException`
        unless ``loss_tolerant``; an entry that cannot be decoded raises
        :class:`MessageDecodeError`. Leaving the loop releases everything;
        once the client shuts down, the next step raises ``RuntimeError``.
        """
        self._client._check_open()
        requested = check_initial_sequence(start)
        state = RingState.parse(await self._state())
        cursor, problem = start_cursor(
            self._name, loss_tolerant, requested, state, self._epoch
        )
        if problem is not None:
            raise problem
        backoff = Backoff(f"topic {self._name!r}: iterator read")
        while True:
            self._client._check_open()
            try:
                batch = await self._reader.read(cursor)
            except RETRYABLE as error:
                await self._wait_closed(backoff.next_delay(error))
                continue
            if backoff.failures:
                backoff.reset()
            entries, problem = cursor.accept(batch)
            if problem is not None:
                raise problem
            for entry in entries:
                # Between two messages of one batch too, as a listener's
                # delivery stops before its next message on shutdown.
                self._client._check_open()
                message = cursor.take(self._client._codec, entry)
                if isinstance(message, MessageDecodeError):
                    raise message
                yield message

    # ------------------------------------------------------------- lifecycle

    async def destroy(self) -> None:
        """End this topic's listeners and delete the topic from Redis."""
        await _join(self._stop_all(), self._client.join_timeout)
        await self._client._redis.delete(*self._keys.all)
        self._client._forget(self)

    async def get_local_topic_stats(self) -> LocalTopicStats:
        """Counts of publishes and deliveries, and per listener its lag."""
        runners = dict(self._runners)
        tail = RingState.parse(await self._state()).tail if runners else -1
        return self._stats(dict(runners), tail)

    async def _state(self) -> list[Any]:
        reply: list[Any] = await self._script(STATE, [])
        return reply

    async def _script(self, script: LuaScript, args: list[Any]) -> Any:
        """Run a script on this topic's keys; an error caused by an entry
        another tool wrote is reported as such."""
        client = self._client
        try:
            return await client._script(script, self._keys.all, args)
        except ResponseError as error:
            newest = await client._redis.xrevrange(self._keys.stream, count=1)
            problem = foreign_entry(self._name, newest)
            if problem is None:
                raise
            raise problem from error


class AsyncRingbufferView:
    """Read-only access to the ring behind a topic, as coroutines."""

    def __init__(self, topic: ReliableTopic) -> None:
        self._topic = topic

    async def _ring(self) -> RingState:
        return RingState.parse(await self._topic._state())

    async def head_sequence(self) -> int:
        """The oldest retained sequence (``tail + 1`` when empty)."""
        return (await self._ring()).head

    async def tail_sequence(self) -> int:
        """The newest sequence ever published (-1 before the first)."""
        return (await self._ring()).tail

    async def size(self) -> int:
        """How many messages are retained."""
        return (await self._ring()).size

    async def capacity(self) -> int:
        """The most messages the ring keeps."""
        return self._topic.config.capacity

    async def remaining_capacity(self) -> int:
        """Free places before the ring is full (the capacity when there is
        no retention period)."""
        config = self._topic.config
        size = (await self._ring()).size if config.time_to_live else 0
        return remaining_capacity(config, size)

    async def read_one(self, sequence: int) -> TopicMessage[Any]:
        """The message at ``sequence``; see the threaded ``read_one``."""
        messages = await self.read_many(sequence, 1)
        if not messages:
            raise not_published(self._topic.name, sequence)
        return messages[0]

    async def read_many(
        self, start_sequence: int, max_count: int
    ) -> list[TopicMessage[Any]]:
        """Up to ``max_count`` messages from ``start_sequence``, no waiting."""
        topic = self._topic
        check_read_range(topic.name, await self._ring(), start_sequence, max_count)
        entries = await topic._client._redis.xrange(
            topic._keys.stream, min=entry_id(start_sequence), count=max_count
        )
        return decode_all(topic.name, topic._client._codec, entries)


class _Runner:
    """The task that delivers a topic's messages to one listener."""

    def __init__(
        self,
        topic: ReliableTopic,
        registration_id: str,
        listener: ReliableMessageListener[Any],
        cursor: Cursor,
    ) -> None:
        self.topic = topic
        self.registration_id = registration_id
        self.listener = listener
        self.cursor = cursor
        self.error: BaseException | None = None
        self.stopping = False
        # True while awaiting Redis or a backoff pause: only then may a stop
        # cancel the task, never in the middle of the listener's own code.
        self.interruptible = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        name = f"hzreliable-listener-{self.topic.name}-{self.registration_id[:8]}"
        self.task = asyncio.get_running_loop().create_task(self.run(), name=name)

    def stop(self) -> None:
        self.stopping = True
        if self.interruptible and self.task is not None:
            self.task.cancel()

    async def run(self) -> None:
        try:
            self.error = await self._loop()
        except asyncio.CancelledError:
            self.error = None
        except Exception as error:
            logger.exception("topic %r: listener runner failed", self.topic.name)
            self.error = error
        finally:
            await self.finish()

    async def _loop(self) -> BaseException | None:
        topic = self.topic
        backoff = Backoff(f"topic {topic.name!r}: listener read")
        while not self.stopping:
            self.interruptible = True
            try:
                batch = await topic._reader.read(self.cursor)
            except RETRYABLE as error:
                await asyncio.sleep(backoff.next_delay(error))
                continue
            finally:
                self.interruptible = False
            if backoff.failures:
                backoff.reset()
            entries, problem = self.cursor.accept(batch)
            if problem is not None:
                return problem
            ended = await self._deliver(entries)
            if ended is not None:
                return ended
        return None

    async def _deliver(self, entries: list[Any]) -> BaseException | None:
        topic = self.topic
        listener = self.listener
        codec = topic._client._codec
        for entry in entries:
            if self.stopping:
                return None
            message = self.cursor.take(codec, entry)
            sequence = self.cursor.next - 1
            try:
                if isinstance(message, MessageDecodeError):
                    raise message
                await _call(listener.store_sequence, sequence)
                await _call(listener.on_message, message)
            except Exception as error:  # noqa: BLE001 - the listener decides
                verdict: object
                try:
                    verdict = await _call(listener.is_terminal, error)
                except Exception as raised:  # noqa: BLE001 - counts as terminal
                    verdict = raised
                if is_terminal_verdict(
                    topic.name, self.registration_id, error, sequence, verdict
                ):
                    return error
            if topic._stats_enabled:
                self.cursor.delivered += 1
        return None

    async def finish(self) -> None:
        self.topic._runner_ended(self)
        log_listener_end(
            self.topic.name, self.registration_id, self.error, self.cursor.next
        )
        try:
            await _call(self.listener.on_cancel)
        except Exception:
            logger.exception("topic %r: on_cancel raised", self.topic.name)


class _SharedReader:
    """The asyncio twin of the threaded SharedReader: cached entries, and
    one read per position however many listeners wait there."""

    def __init__(self, topic: ReliableTopic) -> None:
        self.topic = topic
        self.cache = ReadCache()
        self.flights: dict[int, asyncio.Future[Batch]] = {}

    async def read(self, cursor: Cursor) -> Batch:
        sequence = cursor.next
        count = self.topic.config.read_batch_size
        hit = self.cache.lookup(sequence, count, cursor.epoch)
        if hit is not None:
            return hit
        flight = self.flights.get(sequence)
        if flight is not None:
            # Shielded: a follower being stopped must not cancel the read
            # the other listeners wait for.
            return await asyncio.shield(flight)
        flight = asyncio.get_running_loop().create_future()
        flight.add_done_callback(_retrieve)
        self.flights[sequence] = flight
        try:
            batch = await self._fetch(sequence, count)
        except asyncio.CancelledError:
            flight.set_result(Batch([], None))  # the others read again
            raise
        except BaseException as error:
            flight.set_exception(error)
            raise
        finally:
            del self.flights[sequence]
        self.cache.add(batch)
        flight.set_result(batch)
        return batch

    async def _fetch(self, sequence: int, count: int) -> Batch:
        topic = self.topic
        client = topic._client
        pipe = client._redis.pipeline(transaction=False)
        queue_read(client._redis, pipe, topic._keys, sequence, count, client._block_ms)
        replies = await pipe.execute()
        batch = batch_of(replies)
        if batch is not None:
            return batch
        return Batch([], as_text(replies[1]), RingState.parse(await topic._state()))


def _retrieve(future: asyncio.Future[Batch]) -> None:
    """Mark a flight's error as seen even when no follower waited for it."""
    if not future.cancelled():
        future.exception()


async def _join(runners: list[_Runner], timeout: float) -> None:
    current = asyncio.current_task()
    tasks = {r.task for r in runners if r.task is not None and r.task is not current}
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        logger.warning(
            "listener task %s did not stop within %.1fs", task.get_name(), timeout
        )


HazelcastClient = ReliableTopicClient
"""The Hazelcast name for :class:`ReliableTopicClient`."""
