"""Publishing: sequences, codec, retention and the overload policies."""

from __future__ import annotations

import threading
from typing import Any

import pydantic
import pytest
import redis

from hzreliable import (
    ReliableTopicClient,
    ReliableTopicConfig,
    StaleSequenceException,
    TopicConfigConflictError,
    TopicOverloadException,
    TopicOverloadPolicy,
)

from .conftest import eventually

OVERWRITING = list(TopicOverloadPolicy)


def test_sequences_are_contiguous_from_zero(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic("seq")

    assert [topic.publish(i) for i in range(5)] == [0, 1, 2, 3, 4]
    assert topic.publish_all(["a", "b"]) == [5, 6]
    assert topic.ringbuffer.head_sequence() == 0
    assert topic.ringbuffer.tail_sequence() == 6
    assert topic.ringbuffer.size() == 7


def test_an_empty_topic_has_tail_one_before_head(client: ReliableTopicClient) -> None:
    ring = client.get_reliable_topic("empty").ringbuffer

    assert ring.tail_sequence() == -1
    assert ring.head_sequence() == 0
    assert ring.size() == 0
    assert ring.capacity() == 10_000


class OrderCreated(pydantic.BaseModel):
    order_id: str
    qty: int


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("text", "text"),
        (42, 42),
        (2.5, 2.5),
        (True, True),
        (None, None),
        ([1, "two", None], [1, "two", None]),
        ({"nested": {"list": [1.5]}}, {"nested": {"list": [1.5]}}),
        ("unicode ✓ 漢字", "unicode ✓ 漢字"),
        (b"\x00\xffraw", b"\x00\xffraw"),
        (OrderCreated(order_id="o-1", qty=2), {"order_id": "o-1", "qty": 2}),
    ],
)
def test_messages_round_trip(
    client: ReliableTopicClient, sent: Any, expected: Any
) -> None:
    topic = client.get_reliable_topic("codec")

    sequence = topic.publish(sent)

    assert sequence is not None
    assert topic.ringbuffer.read_one(sequence).message == expected


def test_publish_time_comes_from_the_server_clock(
    client: ReliableTopicClient, backend: redis.Redis
) -> None:
    topic = client.get_reliable_topic("clock")
    seconds, micros = backend.time()
    before = seconds + micros / 1e6

    sequence = topic.publish("x")

    seconds, micros = backend.time()
    stamp = topic.ringbuffer.read_one(sequence or 0).publish_time
    assert before <= stamp <= seconds + micros / 1e6


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (object(), TypeError),
        ({1, 2}, TypeError),
        (float("nan"), ValueError),
        ({"x": float("inf")}, ValueError),
    ],
)
def test_an_unserializable_message_raises_and_stores_nothing(
    client: ReliableTopicClient, bad: Any, error: type[Exception]
) -> None:
    topic = client.get_reliable_topic("bad")

    with pytest.raises(error, match="JSON"):
        topic.publish(bad)
    with pytest.raises(error, match="JSON"):
        topic.publish_all(["fine", bad])

    assert topic.ringbuffer.tail_sequence() == -1


def test_a_message_over_the_size_limit_is_refused(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic("big", ReliableTopicConfig(max_message_bytes=100))

    with pytest.raises(ValueError, match="max_message_bytes"):
        topic.publish("x" * 200)

    assert topic.ringbuffer.size() == 0
    with pytest.raises(ValueError, match="max_message_bytes"):
        topic.publish_all(["small", "x" * 200])  # one too large: none stored
    assert topic.ringbuffer.size() == 0
    assert topic.publish("x" * 90) == 0


def test_publish_all_of_nothing_is_nothing(client: ReliableTopicClient) -> None:
    assert client.get_reliable_topic("none").publish_all([]) == []


def test_publish_all_is_one_contiguous_block_among_other_publishers(
    make_client: Any,
) -> None:
    topic = make_client().get_reliable_topic("block")
    others = [make_client().get_reliable_topic("block") for _ in range(3)]
    stop = threading.Event()

    def interleave(other: Any) -> None:
        while not stop.is_set():
            other.publish("other")

    threads = [threading.Thread(target=interleave, args=(o,)) for o in others]
    for thread in threads:
        thread.start()
    try:
        batches = [topic.publish_all([(b, i) for i in range(50)]) for b in range(5)]
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    for b, sequences in enumerate(batches):
        assert sequences == list(range(sequences[0], sequences[0] + 50))
        read = topic.ringbuffer.read_many(sequences[0], 50)
        assert [m.message for m in read] == [[b, i] for i in range(50)]


@pytest.mark.parametrize("policy", ["ERROR", "BLOCK"])
def test_a_batch_that_only_partly_fits_stores_nothing(
    client: ReliableTopicClient, policy: str
) -> None:
    topic = _full_topic(client, policy, size=1)  # 2 of 3 places free

    with pytest.raises(TopicOverloadException):
        topic.publish_all(["a", "b", "c"], timeout=0.05)

    assert topic.ringbuffer.tail_sequence() == 0
    assert topic.ringbuffer.size() == 1


def test_reading_a_trimmed_or_unpublished_sequence_is_refused(
    client: ReliableTopicClient,
) -> None:
    config = ReliableTopicConfig(capacity=2, read_batch_size=2)
    topic = client.get_reliable_topic("window", config)
    topic.publish_all(range(4))  # 0 and 1 trimmed
    ring = topic.ringbuffer

    with pytest.raises(StaleSequenceException):
        ring.read_one(1)
    with pytest.raises(StaleSequenceException):
        ring.read_many(0, 2)
    with pytest.raises(ValueError, match="not published"):
        ring.read_one(4)
    with pytest.raises(ValueError, match="beyond the tail"):
        ring.read_many(5, 1)
    assert [m.message for m in ring.read_many(2, 10)] == [2, 3]
    assert topic.name == "window"


@pytest.mark.parametrize("policy", OVERWRITING)
def test_without_retention_every_policy_overwrites_the_oldest(
    client: ReliableTopicClient, policy: TopicOverloadPolicy
) -> None:
    config = ReliableTopicConfig(capacity=3, read_batch_size=3, overload_policy=policy)
    topic = client.get_reliable_topic("ring", config)

    sequences = [topic.publish(i) for i in range(5)]

    assert sequences == [0, 1, 2, 3, 4]
    assert topic.ringbuffer.head_sequence() == 2
    assert topic.ringbuffer.size() == 3
    assert topic.ringbuffer.remaining_capacity() == 3
    assert [m.message for m in topic.ringbuffer.read_many(2, 10)] == [2, 3, 4]


def _full_topic(
    client: ReliableTopicClient, policy: str, ttl: float = 60, size: int = 3
) -> Any:
    """A retaining ring of capacity 3 holding ``size`` messages (0, 1, ...)."""
    config = ReliableTopicConfig(
        capacity=3,
        read_batch_size=1,
        time_to_live=ttl,
        overload_policy=TopicOverloadPolicy(policy),
    )
    topic = client.get_reliable_topic(f"full-{policy.lower()}", config)
    assert topic.publish_all(list(range(size))) == list(range(size))
    assert topic.ringbuffer.remaining_capacity() == 3 - size
    return topic


def test_discard_oldest_overwrites_even_within_retention(
    client: ReliableTopicClient,
) -> None:
    topic = _full_topic(client, "DISCARD_OLDEST")

    assert topic.publish(3) == 3

    assert [m.message for m in topic.ringbuffer.read_many(1, 10)] == [1, 2, 3]


def test_discard_newest_drops_the_message_and_returns_none(
    client: ReliableTopicClient,
) -> None:
    topic = _full_topic(client, "DISCARD_NEWEST")

    assert topic.publish(3) is None
    assert topic.publish_all([3, 4]) == []

    assert topic.ringbuffer.tail_sequence() == 2
    assert [m.message for m in topic.ringbuffer.read_many(0, 10)] == [0, 1, 2]


def test_error_raises_and_stores_nothing(client: ReliableTopicClient) -> None:
    topic = _full_topic(client, "ERROR")

    with pytest.raises(TopicOverloadException, match="full") as caught:
        topic.publish(3)

    assert caught.value.topic == "full-error"
    assert topic.ringbuffer.tail_sequence() == 2


def test_block_with_timeout_raises_when_the_ring_stays_full(
    client: ReliableTopicClient,
) -> None:
    topic = _full_topic(client, "BLOCK")

    with pytest.raises(TopicOverloadException, match="timeout"):
        topic.publish(3, timeout=0.05)

    assert topic.ringbuffer.tail_sequence() == 2


def test_block_waits_for_the_oldest_retention_to_end(
    client: ReliableTopicClient,
) -> None:
    topic = _full_topic(client, "BLOCK", ttl=0.3)
    oldest = topic.ringbuffer.read_one(0).publish_time

    sequence = topic.publish(3, timeout=10)

    assert sequence == 3
    newest = topic.ringbuffer.read_one(3).publish_time
    assert newest - oldest >= 0.3
    assert topic.ringbuffer.head_sequence() >= 1
    assert topic.ringbuffer.size() <= 3


def test_retention_removes_expired_messages(client: ReliableTopicClient) -> None:
    config = ReliableTopicConfig(capacity=10, time_to_live=0.1)
    topic = client.get_reliable_topic("ttl", config)
    topic.publish_all([1, 2, 3])

    eventually(lambda: topic.ringbuffer.size() == 0, what="expiry")

    assert topic.ringbuffer.head_sequence() == 3
    assert topic.ringbuffer.tail_sequence() == 2
    assert topic.publish(4) == 3


@pytest.mark.parametrize("policy", ["BLOCK", "ERROR", "DISCARD_NEWEST"])
def test_a_batch_larger_than_a_retaining_ring_is_refused_at_once(
    client: ReliableTopicClient, policy: str
) -> None:
    config = ReliableTopicConfig(
        capacity=3,
        read_batch_size=1,
        time_to_live=60,
        overload_policy=TopicOverloadPolicy(policy),
    )
    topic = client.get_reliable_topic("huge", config)

    with pytest.raises(ValueError, match="never fit"):
        topic.publish_all(range(4))

    assert topic.ringbuffer.size() == 0


def test_an_overwriting_batch_larger_than_the_ring_keeps_the_newest(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("over", ReliableTopicConfig(capacity=3))

    assert topic.publish_all(range(5)) == [0, 1, 2, 3, 4]

    assert [m.message for m in topic.ringbuffer.read_many(2, 5)] == [2, 3, 4]


def test_a_conflicting_ring_setting_is_an_error_and_changes_nothing(
    make_client: Any,
) -> None:
    first = make_client().get_reliable_topic("shared", ReliableTopicConfig(capacity=5))
    first.publish("kept")

    with pytest.raises(TopicConfigConflictError, match="capacity=5") as caught:
        make_client().get_reliable_topic("shared", ReliableTopicConfig(capacity=6))

    assert caught.value.stored == (5, 0.0)
    assert first.ringbuffer.capacity() == 5
    assert first.ringbuffer.read_one(0).message == "kept"


def test_a_topic_opened_by_name_adopts_the_stored_ring(make_client: Any) -> None:
    config = ReliableTopicConfig(capacity=4, read_batch_size=2, time_to_live=30)
    make_client().get_reliable_topic("adopt", config)

    adopted = make_client().get_reliable_topic("adopt")

    assert adopted.config.capacity == 4
    assert adopted.config.time_to_live == 30
    assert adopted.config.read_batch_size == 4


def test_client_level_settings_may_differ_between_clients(make_client: Any) -> None:
    make_client().get_reliable_topic("mixed", ReliableTopicConfig(capacity=4))

    other = make_client().get_reliable_topic(
        "mixed",
        ReliableTopicConfig(
            overload_policy=TopicOverloadPolicy.ERROR, read_batch_size=1
        ),
    )

    assert other.config.capacity == 4
    assert other.config.overload_policy is TopicOverloadPolicy.ERROR


@pytest.mark.parametrize(
    "name", ["", "has space", "tag{x}", "a" * 201, "new\nline", "ümlaut"]
)
def test_invalid_topic_names_are_refused(
    client: ReliableTopicClient, backend: redis.Redis, name: str
) -> None:
    with pytest.raises(ValueError, match="invalid topic name"):
        client.get_reliable_topic(name)

    assert backend.keys("*") == []


def test_a_non_string_topic_name_is_a_type_error(client: ReliableTopicClient) -> None:
    with pytest.raises(TypeError, match="str"):
        client.get_reliable_topic(123)  # type: ignore[arg-type]


def test_all_keys_of_a_topic_share_one_hash_tag(
    client: ReliableTopicClient, backend: redis.Redis
) -> None:
    client.get_reliable_topic("orders.eu").publish("x")

    keys = sorted(k.decode() for k in backend.keys("*") if isinstance(k, bytes))

    assert keys
    assert all("{orders.eu}" in key for key in keys)


def test_a_decoding_client_is_accepted(backend: redis.Redis) -> None:
    kwargs = backend.connection_pool.connection_kwargs
    decoding = type(backend)(
        connection_pool=type(backend.connection_pool)(
            connection_class=backend.connection_pool.connection_class,
            **{**kwargs, "decode_responses": True},
        )
    )
    with ReliableTopicClient(decoding) as client:
        topic = client.get_reliable_topic("decoded")
        topic.publish(b"\xff\xfe")
        topic.publish("text")

        assert [m.message for m in topic.ringbuffer.read_many(0, 2)] == [
            b"\xff\xfe",
            "text",
        ]
    assert decoding.ping()


def test_bad_publish_timeout_is_refused(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic("t")

    with pytest.raises(ValueError, match="timeout"):
        topic.publish("x", timeout=-1)

    assert topic.ringbuffer.size() == 0


def test_a_late_copy_of_an_earlier_publish_is_not_stored(
    backend: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A publish resent on a new connection can overtake the first copy, which
    # then reaches Redis after the publisher's next call: the counter of the
    # late copy is below the last one stored, and it must store nothing.
    client = ReliableTopicClient(backend)
    topic = client.get_reliable_topic("late")
    tokens = iter([("p", 1), ("p", 2), ("p", 1), ("p", 2), ("p", 3)])
    monkeypatch.setattr(client, "_publisher_token", lambda: next(tokens))

    assert topic.publish("first") == 0
    assert topic.publish("second") == 1
    topic.publish("first")  # the late copy of call 1
    topic.publish("second")  # a resend of call 2
    assert topic.publish("third") == 2

    assert [m.message for m in topic.ringbuffer.read_many(0, 10)] == [
        "first",
        "second",
        "third",
    ]
    client.shutdown()
