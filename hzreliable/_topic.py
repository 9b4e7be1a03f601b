"""The reliable topic proxy of the threaded API."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from ._config import ReliableTopicConfig
from ._core import (
    PUBLISH_RETRIES,
    TopicCore,
    check_read_range,
    decode_all,
    not_published,
    remaining_capacity,
    start_cursor,
)
from ._listener import (
    ReliableMessageListener,
    TopicMessage,
    as_listener,
    check_initial_sequence,
    check_threaded,
)
from ._protocol import (
    RingState,
    check_batch,
    check_replication,
    entry_id,
    foreign_entry,
    read_publish_reply,
)
from ._retry import RETRYABLE, Backoff
from ._runner import ListenerRunner, SharedReader
from ._scripts import PUBLISH, STATE, LuaScript
from ._stats import LocalTopicStats

if TYPE_CHECKING:
    from ._client import ReliableTopicClient

logger = logging.getLogger(__name__)

__all__ = ["ReliableTopicProxy", "RingbufferView"]


class ReliableTopicProxy(TopicCore["ListenerRunner"]):
    """
    A topic: ordered publish/subscribe over one capped Redis stream.

    Get one from :meth:`ReliableTopicClient.get_reliable_topic`; it is safe to
    share between threads.
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
        self._reader = SharedReader(self)
        self.ringbuffer = RingbufferView(self)
        """A read-only view of the ring behind this topic."""

    # ------------------------------------------------------------ publishing

    def publish(self, message: Any, timeout: float | None = None) -> int | None:
        """
        Publish one message and return its sequence.

        Returns ``None`` when DISCARD_NEWEST dropped it. Under BLOCK, waits
        while the ring is full, for at most ``timeout`` seconds (``None``:
        as long as it takes), then raises :class:`TopicOverloadException`.
        Under ERROR a full ring raises at once. A full ring exists only with
        a ``time_to_live``; without one the oldest message is overwritten.
        """
        sequences = self._publish([message], timeout)
        return sequences[0] if sequences else None

    def publish_all(
        self, messages: Iterable[Any], timeout: float | None = None
    ) -> list[int]:
        """
        Publish a batch atomically, all or nothing, and return the sequences.

        The batch is contiguous: no other publisher's message lands inside
        it. Returns ``[]`` when DISCARD_NEWEST dropped the batch. Under a
        policy that does not overwrite, a batch larger than the capacity can
        never fit and raises ``ValueError`` at once.
        """
        batch = list(messages)
        if not batch:
            return []
        check_batch(len(batch), self._config)
        return self._publish(batch, timeout)

    def _publish(self, messages: list[Any], timeout: float | None) -> list[int]:
        client = self._client
        client._check_open()
        deadline = self._check_timeout(timeout)
        token = client._publisher_token()
        args = self._publish_args(client._codec, token, messages)
        config = self._config
        backoff = None
        while True:
            try:
                reply = self._script(PUBLISH, args)
            except RETRYABLE as error:
                # Safe to resend: the publisher token makes the script store
                # these messages at most once, however often it runs.
                backoff = backoff or Backoff(f"topic {self._name!r}: publish")
                if backoff.failures >= PUBLISH_RETRIES:
                    raise
                if not backoff.wait(error, client._closed):
                    client._check_open()
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
                    acked = client._replicas_acked(self._keys.stream, config)
                    check_replication(self._name, config, outcome.sequences, acked)
                return outcome.sequences
            if client._closed.wait(self._pause(outcome, deadline, timeout)):
                client._check_open()

    # ------------------------------------------------------------- listening

    def add_listener(self, listener: ReliableMessageListener[Any] | Any) -> str:
        """
        Register a listener and return its registration id.

        ``listener`` is a :class:`ReliableMessageListener` or a callable that
        takes a :class:`TopicMessage` (a callable gets only messages published
        after this call returns). The start position is fixed before this
        returns: ``retrieve_initial_sequence()`` is called exactly once, here.
        """
        self._client._check_open()
        reliable = as_listener(listener)
        check_threaded(reliable)
        requested = check_initial_sequence(reliable.retrieve_initial_sequence())
        tolerant = bool(reliable.is_loss_tolerant())
        state = RingState.parse(self._state())
        cursor, problem = start_cursor(
            self._name, tolerant, requested, state, self._epoch
        )
        registration_id = str(uuid.uuid4())
        runner = ListenerRunner(self, registration_id, reliable, cursor)
        with self._lock:
            self._issued.add(registration_id)
            self._runners[registration_id] = runner
        if problem is not None:
            # The runner never starts; end the listener here, as it would.
            runner.error = problem
            runner.finish()
        else:
            runner.start()
        return registration_id

    def remove_listener(self, registration_id: str) -> bool:
        """
        Stop a listener: True the first time, False once it is gone (removed
        or ended by itself). Delivery stops before the next message, even
        when called from inside ``on_message``; ``on_cancel`` runs once.
        """
        with self._lock:
            runner = self._runners.pop(self._check_issued(registration_id), None)
        if runner is None:
            return False
        runner.stop()
        if runner is not threading.current_thread() and runner.is_alive():
            runner.join(self._client.join_timeout)
        return True

    # ------------------------------------------------------------- lifecycle

    def destroy(self) -> None:
        """
        End this topic's listeners and delete the topic from Redis. A topic
        of the same name made later starts again at sequence 0; listeners in
        other processes see the reset.
        """
        runners = self._stop_all()
        self._client._join(runners)
        self._client._redis.delete(*self._keys.all)
        self._client._forget(self)

    def get_local_topic_stats(self) -> LocalTopicStats:
        """Counts of this client's publishes and deliveries, and per listener
        its position, lag and losses."""
        with self._lock:
            runners = dict(self._runners)
        tail = RingState.parse(self._state()).tail if runners else -1
        return self._stats(dict(runners), tail)

    def _state(self) -> list[Any]:
        reply: list[Any] = self._script(STATE, [])
        return reply

    def _script(self, script: LuaScript, args: list[Any]) -> Any:
        """Run a script on this topic's keys; an error caused by an entry
        another tool wrote is reported as such."""
        client = self._client
        try:
            return client._script(script, self._keys.all, args)
        except ResponseError as error:
            newest = client._redis.xrevrange(self._keys.stream, count=1)
            problem = foreign_entry(self._name, newest)
            if problem is None:
                raise
            raise problem from error


class RingbufferView:
    """Read-only access to the ring behind a topic."""

    def __init__(self, topic: ReliableTopicProxy) -> None:
        self._topic = topic

    def _ring(self) -> RingState:
        return RingState.parse(self._topic._state())

    def head_sequence(self) -> int:
        """The oldest retained sequence (``tail + 1`` when empty)."""
        return self._ring().head

    def tail_sequence(self) -> int:
        """The newest sequence ever published (-1 before the first)."""
        return self._ring().tail

    def size(self) -> int:
        """How many messages are retained."""
        return self._ring().size

    def capacity(self) -> int:
        """The most messages the ring keeps."""
        return self._topic.config.capacity

    def remaining_capacity(self) -> int:
        """
        Free places before the ring is full. As in Hazelcast, a ring without
        a retention period is never full, so this is then the capacity.
        """
        config = self._topic.config
        size = self._ring().size if config.time_to_live else 0
        return remaining_capacity(config, size)

    def read_one(self, sequence: int) -> TopicMessage[Any]:
        """The message at ``sequence``; raises :class:`StaleSequenceException`
        if it is no longer retained and ``ValueError`` past the tail."""
        messages = self.read_many(sequence, 1)
        if not messages:
            raise not_published(self._topic.name, sequence)
        return messages[0]

    def read_many(self, start_sequence: int, max_count: int) -> list[TopicMessage[Any]]:
        """
        Up to ``max_count`` messages from ``start_sequence`` on, without
        waiting. An entry that cannot be decoded raises MessageDecodeError.
        """
        topic = self._topic
        check_read_range(topic.name, self._ring(), start_sequence, max_count)
        entries = topic._client._redis.xrange(
            topic._keys.stream, min=entry_id(start_sequence), count=max_count
        )
        return decode_all(topic.name, topic._client._codec, entries)
