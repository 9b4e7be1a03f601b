"""A topic recreated underneath its listeners is noticed, never silently read."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from hzreliable import FROM_OLDEST, TopicResetException
from hzreliable._protocol import TopicKeys

from .conftest import eventually
from .helpers import Recorder


def _listening(make_client: Any, tolerant: bool) -> tuple[Any, Recorder, str]:
    topic = make_client().get_reliable_topic("reborn")
    recorder = Recorder(FROM_OLDEST, tolerant=tolerant)
    registration = topic.add_listener(recorder)
    topic.publish_all(range(6))
    eventually(lambda: len(recorder.messages) == 6)
    return topic, recorder, registration


@pytest.mark.parametrize("how", ["flushdb", "destroy"])
def test_a_tolerant_listener_follows_a_reset_from_the_new_head(
    make_client: Any,
    backend: redis.Redis,
    how: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic, recorder, registration = _listening(make_client, tolerant=True)
    other = make_client().get_reliable_topic("reborn")

    if how == "flushdb":
        backend.flushdb()
    else:
        other.destroy()
    publisher = make_client().get_reliable_topic("reborn")
    publisher.publish_all(["new-0", "new-1", "new-2"])

    eventually(lambda: recorder.received[6:] == ["new-0", "new-1", "new-2"])
    assert recorder.sequences == [0, 1, 2, 3, 4, 5, 0, 1, 2]
    assert topic.get_local_topic_stats().listeners[registration].reset_count == 1
    assert any("was reset" in r.getMessage() for r in caplog.records)
    assert recorder.cancelled == 0


def test_a_reset_that_outgrows_the_old_position_is_still_noticed(
    make_client: Any, backend: redis.Redis
) -> None:
    _, recorder, _ = _listening(make_client, tolerant=True)

    backend.flushdb()
    publisher = make_client().get_reliable_topic("reborn")
    publisher.publish_all([f"new-{i}" for i in range(10)])

    eventually(lambda: len(recorder.messages) == 16)
    assert recorder.received[6:] == [f"new-{i}" for i in range(10)]


def test_a_strict_listener_ends_on_a_reset(
    make_client: Any, backend: redis.Redis
) -> None:
    topic, recorder, registration = _listening(make_client, tolerant=False)

    backend.flushdb()
    make_client().get_reliable_topic("reborn").publish("new")

    eventually(lambda: recorder.cancelled == 1)
    assert isinstance(topic.listener_error(registration), TopicResetException)
    assert recorder.received == list(range(6))


def test_a_reset_with_nothing_published_yet_is_noticed_while_idle(
    make_client: Any, backend: redis.Redis
) -> None:
    topic, recorder, registration = _listening(make_client, tolerant=False)

    backend.flushdb()

    eventually(lambda: recorder.cancelled == 1)
    assert isinstance(topic.listener_error(registration), TopicResetException)


def _roll_back(backend: redis.Redis, keep: int) -> None:
    """What a replica that had only the first ``keep`` entries holds after it
    takes over: the same metadata (identity included), a shorter stream."""
    stream = TopicKeys.of("reborn").stream
    kept: Any = backend.xrange(stream, count=keep)
    pipe = backend.pipeline(transaction=True)
    pipe.delete(stream)
    for entry_id, fields in kept:
        pipe.xadd(stream, fields, id=entry_id)
    pipe.execute()


@pytest.mark.parametrize("tolerant", [False, True])
def test_a_rollback_that_grew_past_a_listener_is_a_reset(
    make_client: Any, backend: redis.Redis, tolerant: bool
) -> None:
    topic, recorder, registration = _listening(make_client, tolerant=tolerant)

    _roll_back(backend, keep=3)
    topic.publish_all([f"new-{i}" for i in range(5)])  # sequences 3..7

    if tolerant:
        # From the oldest message of the history Redis now holds.
        history = [0, 1, 2, *(f"new-{i}" for i in range(5))]
        eventually(lambda: recorder.received[6:] == history)
        stats = topic.get_local_topic_stats().listeners[registration]
        assert stats.reset_count == 1
        assert recorder.cancelled == 0
    else:
        eventually(lambda: recorder.cancelled == 1)
        error = topic.listener_error(registration)
        assert isinstance(error, TopicResetException)
        assert "now holds another message" in str(error)
        assert recorder.received == list(range(6))


def test_a_listener_added_after_a_reset_is_not_served_the_old_topic(
    make_client: Any, backend: redis.Redis
) -> None:
    topic, _, _ = _listening(make_client, tolerant=True)  # fills the cache

    backend.flushdb()
    make_client().get_reliable_topic("reborn").publish_all(["new-0", "new-1"])
    late = Recorder(FROM_OLDEST)
    registration = topic.add_listener(late)

    eventually(lambda: late.received == ["new-0", "new-1"])
    assert topic.listener_error(registration) is None
    assert late.cancelled == 0
