"""The thread that delivers a topic's messages to one listener."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ._cluster import queue_read
from ._core import is_terminal_verdict, log_listener_end
from ._errors import MessageDecodeError
from ._listener import ReliableMessageListener
from ._protocol import Cursor, RingState, as_text
from ._reading import Batch, Flight, ReadCache, batch_of
from ._retry import RETRYABLE, Backoff

if TYPE_CHECKING:
    from ._topic import ReliableTopicProxy

logger = logging.getLogger(__name__)


class ListenerRunner(threading.Thread):
    """
    Reads batches with a blocking XREAD and hands each message to the
    listener, in order, one at a time, until stopped or ended.
    """

    def __init__(
        self,
        topic: ReliableTopicProxy,
        registration_id: str,
        listener: ReliableMessageListener[Any],
        cursor: Cursor,
    ) -> None:
        super().__init__(
            name=f"hzreliable-listener-{topic.name}-{registration_id[:8]}",
            daemon=True,
        )
        self.topic = topic
        self.registration_id = registration_id
        self.listener = listener
        self.cursor = cursor
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def stop(self) -> None:
        self.stopping.set()
        self.topic._reader.wake()

    def run(self) -> None:
        try:
            self.error = self._loop()
        except Exception as error:
            logger.exception("topic %r: listener runner failed", self.topic.name)
            self.error = error
        finally:
            self.finish()

    def _loop(self) -> BaseException | None:
        topic = self.topic
        backoff = Backoff(f"topic {topic.name!r}: listener read")
        while not self.stopping.is_set():
            try:
                batch = topic._reader.read(self.cursor, self.stopping)
            except RETRYABLE as error:
                if not backoff.wait(error, self.stopping):
                    return None
                continue
            if backoff.failures:
                backoff.reset()
            entries, problem = self.cursor.accept(batch)
            if problem is not None:
                return problem
            if entries:
                ended = self._deliver(entries)
                if ended is not None:
                    return ended
        return None

    def _deliver(self, entries: list[Any]) -> BaseException | None:
        topic = self.topic
        listener = self.listener
        codec = topic._client._codec
        debug = logger.isEnabledFor(logging.DEBUG)
        for entry in entries:
            if self.stopping.is_set():
                return None
            message = self.cursor.take(codec, entry)
            sequence = self.cursor.next - 1
            if debug:
                logger.debug("topic %r: delivering %d", topic.name, sequence)
            try:
                if isinstance(message, MessageDecodeError):
                    raise message
                listener.store_sequence(sequence)
                listener.on_message(message)
            except Exception as error:  # noqa: BLE001 - the listener decides
                verdict: object
                try:
                    verdict = listener.is_terminal(error)
                except Exception as raised:  # noqa: BLE001 - counts as terminal
                    verdict = raised
                if is_terminal_verdict(
                    topic.name, self.registration_id, error, sequence, verdict
                ):
                    return error
            if topic._stats_enabled:
                self.cursor.delivered += 1
        return None

    def finish(self) -> None:
        self.topic._runner_ended(self)
        log_listener_end(
            self.topic.name, self.registration_id, self.error, self.cursor.next
        )
        try:
            self.listener.on_cancel()
        except Exception:
            logger.exception("topic %r: on_cancel raised", self.topic.name)


class SharedReader:
    """
    Reads one topic for all of this client's listeners: a listener whose
    next entry is cached takes it from there, and listeners waiting at the
    same position share one blocking read instead of issuing one each.
    """

    def __init__(self, topic: ReliableTopicProxy) -> None:
        self.topic = topic
        self.cache = ReadCache()
        self.changed = threading.Condition()
        self.flights: dict[int, Flight] = {}

    def wake(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def read(self, cursor: Cursor, stopping: threading.Event) -> Batch:
        sequence = cursor.next
        count = self.topic.config.read_batch_size
        with self.changed:
            hit = self.cache.lookup(sequence, count, cursor.epoch)
            if hit is not None:
                return hit
            flight = self.flights.get(sequence)
            if flight is not None:
                return self._follow(flight, stopping)
            flight = self.flights[sequence] = Flight()
        try:
            batch = self._fetch(sequence, count)
        except BaseException as error:
            flight.error = error
            raise
        else:
            flight.batch = batch
            return batch
        finally:
            with self.changed:
                del self.flights[sequence]
                flight.done = True
                if flight.batch is not None:
                    self.cache.add(flight.batch)
                self.changed.notify_all()

    def _follow(self, flight: Flight, stopping: threading.Event) -> Batch:
        """Wait (holding the condition) for another listener's read."""
        limit = self.topic._client._block_ms / 1000 + FOLLOW_MARGIN
        self.changed.wait_for(lambda: flight.done or stopping.is_set(), limit)
        if flight.error is not None:
            raise flight.error
        return flight.batch or Batch([], None)

    def _fetch(self, sequence: int, count: int) -> Batch:
        topic = self.topic
        client = topic._client
        pipe = client._redis.pipeline(transaction=False)
        queue_read(client._redis, pipe, topic._keys, sequence, count, client._block_ms)
        replies = pipe.execute()
        batch = batch_of(replies)
        if batch is not None:
            return batch
        return Batch([], as_text(replies[1]), RingState.parse(topic._state()))


FOLLOW_MARGIN = 5.0
"""Seconds a listener waits beyond the blocking read for another listener's
read before reading again itself."""
