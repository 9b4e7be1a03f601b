"""A short guided tour of hzreliable, run by ``python -m hzreliable demo``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from redis import Redis

from ._client import ReliableTopicClient
from ._config import ReliableTopicConfig, TopicOverloadPolicy
from ._errors import TopicOverloadException
from ._listener import FROM_OLDEST, ReliableMessageListener, TopicMessage

DELIVERY_TIMEOUT = 5.0
"""Seconds the tour waits for a listener to receive what it expects."""


class DemoError(Exception):
    """The tour could not go on; the command reports it in one line."""


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise DemoError(f"no delivery to the {what} within {DELIVERY_TIMEOUT:g} s")
        time.sleep(0.01)


class _Printer(ReliableMessageListener[Any]):
    def __init__(self, label: str, start: int, out: Callable[[str], None]) -> None:
        self.label, self.start, self.out = label, start, out
        self.seen: list[int] = []
        self.stored = start

    def retrieve_initial_sequence(self) -> int:
        return self.start

    def store_sequence(self, sequence: int) -> None:
        self.stored = sequence + 1

    def on_message(self, message: TopicMessage[Any]) -> None:
        self.out(f"  {self.label} got #{message.sequence}: {message.message}")
        self.seen.append(message.sequence)


def run_demo(redis: Redis, out: Callable[[str], None] = print) -> dict[str, Any]:
    """
    Publish, replay, resume and overload, narrated on ``out``; returns what
    happened, for ``--json``. Raises DemoError if a delivery does not come.
    """
    prefix = f"demo-{uuid.uuid4().hex[:6]}"
    published: list[int | None] = []
    with ReliableTopicClient(redis) as client:
        topic = client.get_reliable_topic(f"{prefix}.orders")
        out("1. Publish three events; each gets the next sequence:")
        for event in ("OrderCreated", "OrderPaid", "OrderShipped"):
            sequence = topic.publish({"type": event, "order_id": "order-123"})
            published.append(sequence)
            out(f"  published {event} as #{sequence}")

        out("2. A late joiner replays from the oldest retained message:")
        late = _Printer("late joiner", FROM_OLDEST, out)
        topic.add_listener(late)
        _wait_for(lambda: len(late.seen) == 3, "late joiner")

        out("3. Durable resume: a consumer stops, events arrive, it resumes:")
        topic.publish_all([{"type": "OrderClosed", "order_id": "order-123"}])
        _wait_for(lambda: len(late.seen) == 4, "late joiner")
        resume_at = late.stored
        client.shutdown()
        with ReliableTopicClient(redis) as again:
            reopened = again.get_reliable_topic(f"{prefix}.orders")
            reopened.publish({"type": "OrderCreated", "order_id": "order-124"})
            out(f"  restarted consumer resumes at #{resume_at}")
            resumed = _Printer("resumed", resume_at, out)
            reopened.add_listener(resumed)
            _wait_for(lambda: len(resumed.seen) == 1, "resumed consumer")
            reopened.destroy()

        out("4. Overload policies on a ring of 2 with a 0.5 s retention:")
        with ReliableTopicClient(redis) as policies:
            overload = [
                _overload(policies, f"{prefix}.{policy.value.lower()}", policy, out)
                for policy in TopicOverloadPolicy
            ]
    out("Done.")
    return {
        "published": published,
        "replayed": late.seen,
        "resumed_at": resume_at,
        "resumed": resumed.seen,
        "overload": overload,
    }


def _overload(
    client: ReliableTopicClient,
    name: str,
    policy: TopicOverloadPolicy,
    out: Callable[[str], None],
) -> dict[str, Any]:
    config = ReliableTopicConfig(
        capacity=2, read_batch_size=2, time_to_live=0.5, overload_policy=policy
    )
    topic = client.get_reliable_topic(name, config)
    topic.publish_all(["a", "b"])
    started = time.monotonic()
    sequence: int | None = None
    error: str | None = None
    try:
        sequence = topic.publish("c")
        result: Any = sequence
    except TopicOverloadException:
        error = "TopicOverloadException"
        result = f"raised {error}"
    waited = time.monotonic() - started
    kept = [
        m.message
        for m in topic.ringbuffer.read_many(topic.ringbuffer.head_sequence(), 2)
    ]
    out(
        f"  {policy.value:<14} publish('c') -> {result!s:<32} "
        f"after {waited:.2f}s; ring holds {kept}"
    )
    topic.destroy()
    return {
        "policy": policy.value,
        "sequence": sequence,
        "error": error,
        "waited": round(waited, 2),
        "kept": kept,
    }
