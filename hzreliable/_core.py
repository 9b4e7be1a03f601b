"""
The parts of a topic proxy that do no I/O, shared by the threaded and the
asyncio proxies: identity, counters, registrations, publish arguments and
the checks around reads. Each proxy adds only its own way of waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Generic, Protocol, TypeVar

from ._codec import Codec
from ._config import ReliableTopicConfig
from ._errors import StaleSequenceException
from ._listener import TopicMessage
from ._protocol import (
    Cursor,
    PublishOutcome,
    RingState,
    TopicKeys,
    block_timeout_error,
    decode_entry,
    encode_messages,
    new_epoch,
)
from ._stats import ListenerStats, LocalTopicStats

logger = logging.getLogger("hzreliable")

PUBLISH_RETRIES = 3
"""Times a publish is resent after a connection error or timeout, on top of
redis-py's own retries; resending is safe because publishes deduplicate."""


class Runner(Protocol):
    """What the core needs to know of a listener runner."""

    registration_id: str
    cursor: Cursor
    error: BaseException | None

    def stop(self) -> None: ...


R = TypeVar("R", bound=Runner)


class TopicCore(Generic[R]):
    """State and rules of one topic proxy, whose listeners run as ``R``."""

    def __init__(self, name: str, config: ReliableTopicConfig, epoch: str) -> None:
        self._name = name
        self._config = config
        self._keys = TopicKeys.of(name)
        self._epoch = epoch
        self._stats_enabled = config.statistics_enabled
        self._ring_args = [config.capacity, config.ttl_us, config.overload_policy.value]
        self._creation_time = time.time()
        self._published = 0
        # Deliveries of listeners that ended; live ones count in their
        # cursors, each written by its own runner only.
        self._received_ended = 0
        self._lock = threading.Lock()
        self._runners: dict[str, R] = {}
        self._issued: set[str] = set()
        self._errors: dict[str, BaseException | None] = {}

    @property
    def name(self) -> str:
        """The topic's name."""
        return self._name

    @property
    def config(self) -> ReliableTopicConfig:
        """The settings in force, ring settings as stored in Redis."""
        return self._config

    def __repr__(self) -> str:
        return f"<ReliableTopic {self._name!r}>"

    # ------------------------------------------------------------ publishing

    def _publish_args(
        self, codec: Codec, token: tuple[str, int], messages: list[Any]
    ) -> list[Any]:
        """Everything publish.lua needs; encoding first means one bad
        message stores nothing."""
        return [
            *self._ring_args,
            new_epoch(),
            *token,
            *encode_messages(codec, messages, self._config),
        ]

    @staticmethod
    def _check_timeout(timeout: float | None) -> float | None:
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 or None, not {timeout}")
        return None if timeout is None else time.monotonic() + timeout

    def _published_now(self, sequences: list[int]) -> None:
        if self._stats_enabled:
            with self._lock:  # publishers may share the proxy across threads
                self._published += len(sequences)

    def _pause(
        self, outcome: PublishOutcome, deadline: float | None, timeout: float | None
    ) -> float:
        """How long a BLOCK publish waits before trying again."""
        assert outcome.wait is not None
        pause = outcome.wait
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise block_timeout_error(self._name, timeout or 0.0)
            pause = min(pause, left)
        logger.debug("topic %r is full; waiting %.3fs", self._name, pause)
        return pause

    # ---------------------------------------------------------- registrations

    def _check_issued(self, registration_id: object) -> str:
        if not isinstance(registration_id, str):
            raise TypeError(
                f"registration_id must be a str, not {type(registration_id).__name__}"
            )
        if registration_id not in self._issued:
            raise ValueError(
                f"topic {self._name!r} never issued registration id {registration_id!r}"
            )
        return registration_id

    def listener_error(self, registration_id: str) -> BaseException | None:
        """
        Why a listener ended by itself: the :class:`StaleSequenceException`
        or the terminal error; ``None`` while it runs or after a removal.
        """
        with self._lock:
            return self._errors.get(self._check_issued(registration_id))

    def _runner_ended(self, runner: R) -> None:
        with self._lock:
            self._runners.pop(runner.registration_id, None)
            self._errors[runner.registration_id] = runner.error
            self._received_ended += runner.cursor.delivered

    def _stop_all(self) -> list[R]:
        with self._lock:
            runners = list(self._runners.values())
            self._runners.clear()
        for runner in runners:
            runner.stop()
        return runners

    def _stats(self, runners: dict[str, R], tail: int) -> LocalTopicStats:
        listeners = {
            rid: ListenerStats(
                next_sequence=r.cursor.next,
                lag=max(0, tail + 1 - r.cursor.next),
                lost_count=r.cursor.lost,
                reset_count=r.cursor.resets,
            )
            for rid, r in runners.items()
        }
        return LocalTopicStats(
            creation_time=self._creation_time,
            publish_operation_count=self._published,
            receive_operation_count=self._received_ended
            + sum(r.cursor.delivered for r in runners.values()),
            listeners=listeners,
        )


def remaining_capacity(config: ReliableTopicConfig, size: int) -> int:
    """As in Hazelcast, a ring without a retention period is never full."""
    if config.time_to_live == 0:
        return config.capacity
    return config.capacity - size


def check_read_range(
    name: str, ring: RingState, start_sequence: object, max_count: object
) -> None:
    """The rules of read_many, checked before anything is read."""
    _check_count("start_sequence", start_sequence, 0)
    _check_count("max_count", max_count, 1)
    assert isinstance(start_sequence, int)
    if start_sequence > ring.tail + 1:
        raise ValueError(
            f"topic {name!r}: start_sequence {start_sequence} is "
            f"beyond the tail {ring.tail}"
        )
    if start_sequence < ring.head:
        raise StaleSequenceException(
            name, start_sequence, ring.head, ring.head - start_sequence
        )


def decode_all(name: str, codec: Codec, entries: Any) -> list[TopicMessage[Any]]:
    messages = []
    for entry in entries:
        message = decode_entry(name, codec, entry)
        if isinstance(message, Exception):
            raise message
        messages.append(message)
    return messages


def not_published(name: str, sequence: int) -> ValueError:
    return ValueError(f"topic {name!r}: sequence {sequence} is not published yet")


def _check_count(what: str, value: object, lowest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < lowest:
        raise ValueError(f"{what} must be >= {lowest}, not {value}")


def start_cursor(
    name: str,
    tolerant: bool,
    requested: int,
    state: RingState,
    epoch: str,
) -> tuple[Cursor, StaleSequenceException | None]:
    """Fix a new listener's position; an error means it ends at once."""
    cursor = Cursor(name, tolerant, state.epoch or epoch)
    return cursor, cursor.start(requested, state)


def is_terminal_verdict(
    name: str,
    registration_id: str,
    error: BaseException,
    sequence: int,
    verdict: object,
) -> bool:
    """
    Whether a listener's error ends it. ``verdict`` is what its
    ``is_terminal(error)`` returned, or the exception it raised instead,
    which counts as terminal: a listener that cannot judge its own errors
    is not safe to go on with.
    """
    if isinstance(verdict, Exception):
        logger.warning(
            "topic %r: listener %s: is_terminal raised %r; ending the listener",
            name,
            registration_id,
            verdict,
            exc_info=verdict,
        )
        return True
    if verdict:
        return True
    logger.warning(
        "topic %r: listener %s raised %r at sequence %d; continuing",
        name,
        registration_id,
        error,
        sequence,
    )
    return False


def log_listener_end(
    name: str, registration_id: str, error: BaseException | None, sequence: int
) -> None:
    if error is not None:
        logger.warning(
            "topic %r: listener %s ended at sequence %d: %s",
            name,
            registration_id,
            sequence,
            error,
        )
