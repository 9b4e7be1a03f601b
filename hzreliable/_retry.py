"""Capped exponential backoff for reconnecting, shared by every runner."""

from __future__ import annotations

import logging
import random
import threading

from redis.exceptions import ClusterError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

FIRST_DELAY = 0.05
"""Seconds before the first retry."""
MAX_DELAY = 2.0
"""Longest pause between two retries, in seconds."""

RETRYABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    # A Redis Cluster answers CLUSTERDOWN while a node is down or just
    # restarted, TRYAGAIN while a slot migrates, and redis-py has no node for
    # a slot until it sees the new layout: all pass like a lost connection.
    ClusterError,
    TryAgainError,
    SlotNotCoveredError,
)
"""Errors after which a read or a (deduplicated) publish is tried again."""


class Backoff:
    """Counts consecutive failures and says how long to pause after each."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failures = 0

    def next_delay(self, error: BaseException) -> float:
        self.failures += 1
        delay: float = min(MAX_DELAY, FIRST_DELAY * 2.0 ** (self.failures - 1))
        delay *= random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not crypto
        logger.warning(
            "%s failed (%s); retry %d in %.2fs",
            self.what,
            error,
            self.failures,
            delay,
        )
        return delay

    def wait(self, error: BaseException, stopping: threading.Event) -> bool:
        """Pause before the next try; False if asked to stop meanwhile."""
        return not stopping.wait(self.next_delay(error))

    def reset(self) -> None:
        logger.warning("%s recovered after %d retries", self.what, self.failures)
        self.failures = 0
