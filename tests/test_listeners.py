"""Listening: start positions, order, loss, errors, removal."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest
import redis

from hzreliable import (
    FROM_LATEST,
    FROM_OLDEST,
    MessageDecodeError,
    ReliableMessageListener,
    ReliableTopicClient,
    ReliableTopicConfig,
    StaleSequenceException,
    TopicMessage,
    TopicResetException,
)
from hzreliable._protocol import TopicKeys

from .conftest import eventually
from .helpers import Recorder, in_event_loop, then, watch_fetches


def test_a_plain_callable_gets_only_messages_published_after_registration(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("plain")
    topic.publish("old")
    got: list[Any] = []

    topic.add_listener(lambda message: got.append(message.message))
    topic.publish("new")

    eventually(lambda: got == ["new"], what="delivery")


def test_from_oldest_replays_everything_retained(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic("replay")
    topic.publish_all(["a", "b", "c"])
    recorder = Recorder(FROM_OLDEST)

    topic.add_listener(recorder)
    topic.publish("d")

    eventually(lambda: recorder.received == ["a", "b", "c", "d"])
    assert recorder.sequences == [0, 1, 2, 3]
    assert recorder.messages[0].name == "replay"


def test_a_sequence_starts_exactly_there(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic("from-n")
    topic.publish_all(range(5))
    recorder = Recorder(3)

    topic.add_listener(recorder)

    eventually(lambda: recorder.received == [3, 4])


def test_from_latest_skips_what_was_published_before(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("latest")
    topic.publish_all(range(3))
    recorder = Recorder(FROM_LATEST)

    topic.add_listener(recorder)
    topic.publish(99)

    eventually(lambda: recorder.received == [99])


def test_initial_sequence_is_asked_once_and_fixed_before_add_listener_returns(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("fixed")
    topic.publish_all(["a", "b"])
    recorder = Recorder(FROM_LATEST)

    registration = topic.add_listener(recorder)
    topic.publish("c")

    eventually(lambda: recorder.received == ["c"])
    assert recorder.initial_calls == 1
    stats = topic.get_local_topic_stats().listeners[registration]
    assert stats.next_sequence == 3


def test_store_sequence_precedes_each_message_in_order_never_concurrently(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("order", ReliableTopicConfig(read_batch_size=7))
    recorder = Recorder(FROM_OLDEST)
    topic.add_listener(recorder)

    publishers = [
        threading.Thread(target=lambda: [topic.publish(i) for i in range(50)])
        for _ in range(4)
    ]
    for thread in publishers:
        thread.start()
    for thread in publishers:
        thread.join()

    eventually(lambda: len(recorder.messages) == 200)
    expected: list[tuple[str, int]] = []
    for sequence in range(200):
        expected += [("store", sequence), ("message", sequence)]
    assert recorder.calls == expected
    assert not recorder.overlapped
    assert all("hzreliable" in name for name in recorder.threads)


def test_a_loss_tolerant_listener_skips_to_the_head_and_counts_the_loss(
    client: ReliableTopicClient, caplog: pytest.LogCaptureFixture
) -> None:
    topic = client.get_reliable_topic("lossy", ReliableTopicConfig(capacity=3))
    topic.publish_all(range(10))
    recorder = Recorder(2, tolerant=True)

    registration = topic.add_listener(recorder)

    eventually(lambda: recorder.received == [7, 8, 9])
    stats = topic.get_local_topic_stats().listeners[registration]
    assert stats.lost_count == 5
    assert any("5 messages lost" in r.getMessage() for r in caplog.records)
    assert recorder.cancelled == 0


def test_a_non_tolerant_listener_ends_on_loss(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic("strict", ReliableTopicConfig(capacity=3))
    topic.publish_all(range(10))
    recorder = Recorder(2)

    registration = topic.add_listener(recorder)

    eventually(lambda: recorder.cancelled == 1)
    error = topic.listener_error(registration)
    assert isinstance(error, StaleSequenceException)
    assert (error.sequence, error.head, error.lost) == (2, 7, 5)
    assert recorder.received == []
    assert topic.remove_listener(registration) is False


def test_loss_while_listening_is_detected(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic("slow", ReliableTopicConfig(capacity=5))
    release = threading.Event()
    seen: list[int] = []

    class Slow(Recorder):
        def on_message(self, message: TopicMessage[Any]) -> Any:
            def handle() -> None:
                seen.append(message.sequence)
                Recorder.on_message(self, message)

            return then(release, handle)

    recorder = Slow(FROM_OLDEST, tolerant=True)
    registration = topic.add_listener(recorder)
    topic.publish(0)
    eventually(
        lambda: topic.get_local_topic_stats().listeners[registration].next_sequence == 1
    )

    topic.publish_all(range(1, 20))
    release.set()

    eventually(lambda: seen and seen[-1] == 19)
    lost = topic.get_local_topic_stats().listeners[registration].lost_count
    assert sorted(set(seen)) == seen
    assert len(seen) + lost == 20


def test_a_start_beyond_the_tail_ends_a_strict_listener(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("beyond")
    topic.publish_all(range(3))
    recorder = Recorder(50)

    registration = topic.add_listener(recorder)

    assert recorder.cancelled == 1
    error = topic.listener_error(registration)
    assert isinstance(error, TopicResetException)
    assert "beyond the tail 2" in str(error)


def test_a_start_beyond_the_tail_moves_a_tolerant_listener_to_the_head(
    client: ReliableTopicClient, caplog: pytest.LogCaptureFixture
) -> None:
    topic = client.get_reliable_topic("jump", ReliableTopicConfig(capacity=3))
    topic.publish_all(range(5))
    recorder = Recorder(50, tolerant=True)

    registration = topic.add_listener(recorder)
    # Publishing before it caught up would trim sequence 2 from under it.
    eventually(lambda: recorder.received == [2, 3, 4])
    topic.publish("next")

    eventually(lambda: recorder.received == [2, 3, 4, "next"])
    assert recorder.sequences == [2, 3, 4, 5]
    assert topic.listener_error(registration) is None
    stats = topic.get_local_topic_stats().listeners[registration]
    assert (stats.reset_count, stats.lost_count) == (1, 0)
    assert any("beyond the tail" in r.getMessage() for r in caplog.records)


def test_a_non_terminal_error_is_logged_and_delivery_goes_on(
    client: ReliableTopicClient, caplog: pytest.LogCaptureFixture
) -> None:
    topic = client.get_reliable_topic("oops")
    recorder = Recorder(FROM_OLDEST, fail_on={1})

    topic.add_listener(recorder)
    topic.publish_all(range(3))

    eventually(lambda: recorder.received == [0, 2])
    assert recorder.cancelled == 0
    assert any("failing on 1" in r.getMessage() for r in caplog.records)


def test_a_terminal_error_ends_the_listener_once(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic("fatal")
    recorder = Recorder(FROM_OLDEST, fail_on={1}, terminal=True)

    registration = topic.add_listener(recorder)
    topic.publish_all(range(3))

    eventually(lambda: recorder.cancelled == 1)
    assert recorder.received == [0]
    assert isinstance(topic.listener_error(registration), RuntimeError)
    assert topic.remove_listener(registration) is False


def test_is_terminal_raising_counts_as_terminal(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic("worse")
    recorder = Recorder(FROM_OLDEST, fail_on={0}, terminal=ZeroDivisionError)

    topic.add_listener(recorder)
    topic.publish_all(range(3))

    eventually(lambda: recorder.cancelled == 1)
    assert recorder.received == []


def test_a_failing_store_sequence_goes_through_is_terminal(
    client: ReliableTopicClient,
) -> None:
    class BadStore(Recorder):
        def store_sequence(self, sequence: int) -> None:
            if sequence == 1:
                raise OSError("disk full")
            super().store_sequence(sequence)

    topic = client.get_reliable_topic("store")
    recorder = BadStore(FROM_OLDEST, terminal=OSError)

    registration = topic.add_listener(recorder)
    topic.publish_all(range(3))

    eventually(lambda: recorder.cancelled == 1)
    assert recorder.received == [0]
    assert isinstance(topic.listener_error(registration), OSError)


def test_remove_listener_is_true_once_then_false(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic("remove")
    recorder = Recorder()
    registration = topic.add_listener(recorder)

    assert topic.remove_listener(registration) is True
    assert topic.remove_listener(registration) is False
    assert recorder.cancelled == 1

    topic.publish("after")
    assert topic.ringbuffer.size() == 1
    assert recorder.received == []


def test_remove_from_inside_on_message_stops_before_the_next_message(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("inside")
    registration: list[str] = []

    class RemovesItself(Recorder):
        def on_message(self, message: TopicMessage[Any]) -> Any:
            super().on_message(message)
            if message.sequence != 1:
                return None
            if in_event_loop():
                return check(cast(Any, topic).inner.remove_listener(registration[0]))
            assert topic.remove_listener(registration[0]) is True
            return None

    async def check(removal: Any) -> None:
        assert await removal is True

    recorder = RemovesItself(FROM_LATEST)
    registration.append(topic.add_listener(recorder))
    topic.publish_all(range(5))

    eventually(lambda: recorder.cancelled == 1)
    assert recorder.received == [0, 1]


def test_a_registration_id_never_issued_is_an_error(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("ids")

    with pytest.raises(ValueError, match="never issued"):
        topic.remove_listener("not-an-id")
    with pytest.raises(ValueError, match="never issued"):
        topic.listener_error("not-an-id")
    with pytest.raises(TypeError, match="registration_id"):
        topic.remove_listener(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [None, 42, "text", object()])
def test_a_listener_that_is_neither_kind_is_a_type_error(
    client: ReliableTopicClient, bad: Any
) -> None:
    topic = client.get_reliable_topic("kinds")

    with pytest.raises(TypeError, match="listener"):
        topic.add_listener(bad)


def test_a_listener_without_on_message_is_a_type_error(
    client: ReliableTopicClient,
) -> None:
    class Empty(ReliableMessageListener[Any]):
        pass

    with pytest.raises(TypeError, match="on_message"):
        client.get_reliable_topic("empty").add_listener(Empty())


@pytest.mark.parametrize(("value", "error"), [("0", TypeError), (-3, ValueError)])
def test_a_bad_initial_sequence_is_refused(
    client: ReliableTopicClient, value: Any, error: type[Exception]
) -> None:
    topic = client.get_reliable_topic("initial")
    recorder = Recorder(value)

    with pytest.raises(error, match="retrieve_initial_sequence"):
        topic.add_listener(recorder)

    assert topic.get_local_topic_stats().listeners == {}


def test_only_on_message_is_needed(client: ReliableTopicClient) -> None:
    got: list[Any] = []

    class OnlyMessages(ReliableMessageListener[Any]):
        def on_message(self, message: TopicMessage[Any]) -> None:
            got.append(message.message)

    topic = client.get_reliable_topic("minimal")
    topic.publish("before")
    topic.add_listener(OnlyMessages())
    topic.publish("after")

    eventually(lambda: got == ["after"])


def test_an_undecodable_entry_goes_through_is_terminal(
    client: ReliableTopicClient, backend: redis.Redis
) -> None:
    topic = client.get_reliable_topic("foreign")
    stream = TopicKeys.of("foreign").stream
    topic.publish("first")
    backend.xadd(stream, {"d": b"{not json"}, id="0-*")
    backend.xadd(stream, {"something": "else"}, id="0-*")
    topic.publish("last")
    errors: list[BaseException] = []

    class Collect(Recorder):
        def is_terminal(self, error: BaseException) -> bool:
            errors.append(error)
            return False

    recorder = Collect(FROM_OLDEST)
    topic.add_listener(recorder)

    eventually(lambda: recorder.received == ["first", "last"])
    assert [type(e) for e in errors] == [MessageDecodeError, MessageDecodeError]
    assert [e.sequence for e in errors if isinstance(e, MessageDecodeError)] == [1, 2]


def test_an_idle_topic_does_not_end_a_listener(make_client: Any) -> None:
    client = make_client()
    client._block_ms = 20
    topic = client.get_reliable_topic("idle")
    recorder = Recorder()
    topic.add_listener(recorder)
    reads = threading.Event()

    def idle(_: int, batch: Any) -> None:
        if not batch.entries:
            reads.set()

    watch_fetches(topic, idle)
    reads.clear()
    eventually(reads.is_set, what="an idle read")
    topic.publish("late")

    eventually(lambda: recorder.received == ["late"])
    assert recorder.cancelled == 0


def test_a_short_socket_timeout_does_not_break_blocking_reads(
    backend: redis.Redis,
) -> None:
    kwargs = backend.connection_pool.connection_kwargs
    short = type(backend)(
        connection_pool=type(backend.connection_pool)(
            connection_class=backend.connection_pool.connection_class,
            **{**kwargs, "socket_timeout": 0.2},
        )
    )
    with ReliableTopicClient(short) as client:
        assert client._block_ms <= 100
        topic = client.get_reliable_topic("short")
        recorder = Recorder()
        topic.add_listener(recorder)
        done = threading.Event()

        def publish_later() -> None:
            topic.publish("x")
            done.set()

        threading.Timer(0.5, publish_later).start()

        eventually(done.is_set)
        eventually(lambda: recorder.received == ["x"])
        assert recorder.cancelled == 0


def test_listeners_at_the_same_position_share_their_reads(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("fan", ReliableTopicConfig(read_batch_size=10))
    topic.publish_all(range(100))
    fetched: list[int] = []

    def read(sequence: int, batch: Any) -> None:
        if batch.entries:
            fetched.append(sequence)

    watch_fetches(topic, read)
    recorders = [Recorder(FROM_OLDEST) for _ in range(20)]

    for recorder in recorders:
        topic.add_listener(recorder)

    for recorder in recorders:
        eventually(lambda r=recorder: len(r.messages) == 100)  # type: ignore[misc]
        assert recorder.sequences == list(range(100))
    # Twenty listeners, ten batches: one read per batch, not one per listener.
    assert sorted(fetched) == list(range(0, 100, 10))


def test_the_threaded_api_refuses_coroutine_listeners(backend: redis.Redis) -> None:
    class AsyncOnly(ReliableMessageListener[Any]):
        async def on_message(self, message: TopicMessage[Any]) -> None:
            pass

    async def function(message: TopicMessage[Any]) -> None:
        pass

    with ReliableTopicClient(backend) as client:
        topic = client.get_reliable_topic("threads")
        for listener in (AsyncOnly(), function):
            with pytest.raises(TypeError, match=r"hzreliable\.asyncio"):
                topic.add_listener(listener)

        assert topic.get_local_topic_stats().listeners == {}
