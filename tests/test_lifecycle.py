"""Durable resume, destroy, shutdown and statistics."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis

import hzreliable.asyncio
from hzreliable import (
    FROM_OLDEST,
    ReliableTopicClient,
    ReliableTopicConfig,
    TopicMessage,
    TopicOverloadPolicy,
)

from .conftest import eventually
from .helpers import Recorder, live_workers, then


class Durable(Recorder):
    """Stores its sequence in a dict standing in for a database."""

    def __init__(self, store: dict[str, int]) -> None:
        super().__init__(store.get("next", FROM_OLDEST))
        self.store = store

    def on_message(self, message: TopicMessage[Any]) -> None:
        super().on_message(message)
        self.store["next"] = message.sequence + 1


def test_a_durable_listener_resumes_in_a_new_client(make_client: Any) -> None:
    store: dict[str, int] = {}
    first_client = make_client()
    topic = first_client.get_reliable_topic("durable")
    first = Durable(store)
    topic.add_listener(first)
    topic.publish_all(["a", "b"])
    eventually(lambda: first.received == ["a", "b"])
    first_client.shutdown()
    publisher = make_client().get_reliable_topic("durable")
    publisher.publish_all(["c", "d"])

    second = Durable(store)
    make_client().get_reliable_topic("durable").add_listener(second)

    eventually(lambda: second.received == ["c", "d"])
    assert second.sequences == [2, 3]
    assert first.cancelled == 1


def test_destroy_ends_listeners_and_restarts_sequences(
    make_client: Any, backend: redis.Redis
) -> None:
    client = make_client()
    topic = client.get_reliable_topic("doomed")
    recorder = Recorder()
    topic.add_listener(recorder)
    topic.publish_all(range(3))

    topic.destroy()

    assert recorder.cancelled == 1
    assert backend.keys("*") == []
    reborn = client.get_reliable_topic("doomed")
    assert reborn is not topic
    assert reborn.publish("again") == 0


def test_shutdown_ends_every_listener_and_joins_its_thread(make_client: Any) -> None:
    client = make_client()
    recorders = [Recorder() for _ in range(3)]
    for index, recorder in enumerate(recorders):
        client.get_reliable_topic(f"t{index}").add_listener(recorder)
    names = live_workers(client)
    assert len(names) == 3

    started = time.monotonic()
    client.shutdown()

    # Idle listeners sit in a blocking read of at most 0.5 s; a stop wakes
    # the ones waiting on another's read at once.
    assert time.monotonic() - started < 1.0
    assert [r.cancelled for r in recorders] == [1, 1, 1]
    assert not names & live_workers(client)
    with pytest.raises(RuntimeError, match="shut down"):
        client.get_reliable_topic("t0")


def test_shutdown_closes_only_connections_it_opened(backend: redis.Redis) -> None:
    client = ReliableTopicClient(backend)
    client.get_reliable_topic("mine").publish("x")

    client.shutdown()
    client.shutdown()

    assert backend.ping()


def test_a_client_from_a_url_closes_its_own_connection(
    redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)

    probe = redis_server.client()

    def connected() -> set[str]:
        return {c["id"] for c in probe.client_list()}

    before = connected()
    with ReliableTopicClient() as client:
        assert client.get_reliable_topic("env").publish("x") == 0
        opened = connected() - before
        assert opened

    eventually(lambda: not connected() & opened, what="connections to close")
    with ReliableTopicClient.from_url(redis_server.url) as other:
        assert other.get_reliable_topic("env").ringbuffer.size() == 1


@pytest.mark.parametrize("api", ["sync", "asyncio"])
def test_a_client_from_a_url_has_socket_timeouts_the_url_can_override(
    api: str,
) -> None:
    """Without a socket timeout a silent partition would hang a publish."""

    def options(url: str) -> dict[str, Any]:
        if api == "sync":
            client: Any = ReliableTopicClient(url=url)
            kwargs = dict(client.redis.connection_pool.connection_kwargs)
            client.shutdown()
            return kwargs
        aclient: Any = hzreliable.asyncio.ReliableTopicClient(url=url)
        kwargs = dict(aclient.redis.connection_pool.connection_kwargs)
        asyncio.run(aclient.shutdown())
        return kwargs

    plain = options("redis://127.0.0.1:1/0")
    chosen = options("redis://127.0.0.1:1/0?socket_timeout=3")

    assert plain["socket_timeout"] == 10.0
    assert plain["socket_connect_timeout"] == 5.0
    assert plain["socket_keepalive"] is True
    assert chosen["socket_timeout"] == 3.0


def test_a_blocked_publisher_is_released_by_shutdown(make_client: Any) -> None:
    client = make_client()
    config = ReliableTopicConfig(capacity=1, time_to_live=60)
    topic = client.get_reliable_topic("stuck", config)
    topic.publish("fills it")
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            topic.publish("waits")
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=publish)
    thread.start()
    client.shutdown()
    thread.join(5)

    assert not thread.is_alive()
    assert isinstance(errors[0], RuntimeError)


def test_statistics_count_publishes_deliveries_and_lag(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("stats")
    gate = threading.Event()

    class Gated(Recorder):
        def on_message(self, message: TopicMessage[Any]) -> Any:
            return then(gate, lambda: Recorder.on_message(self, message))

    recorder = Gated(FROM_OLDEST)
    registration = topic.add_listener(recorder)
    topic.publish_all(range(4))
    topic.publish("x")

    lagging = topic.get_local_topic_stats()
    gate.set()
    eventually(lambda: len(recorder.messages) == 5)
    stats = topic.get_local_topic_stats()

    assert lagging.listeners[registration].lag >= 4
    assert stats.publish_operation_count == 5
    assert stats.receive_operation_count == 5
    assert stats.listeners[registration].lag == 0
    assert stats.creation_time > 0


def test_statistics_can_be_disabled(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic(
        "quiet", ReliableTopicConfig(statistics_enabled=False)
    )
    topic.publish("x")

    assert topic.get_local_topic_stats().publish_operation_count == 0


def test_the_same_name_gives_the_same_proxy(client: ReliableTopicClient) -> None:
    topic = client.get_reliable_topic("same")

    assert client.get_reliable_topic("same") is topic
    with pytest.raises(ValueError, match="another config"):
        client.get_reliable_topic("same", ReliableTopicConfig(read_batch_size=1))


def test_the_same_config_twice_gives_the_same_proxy_with_adopted_settings(
    make_client: Any,
) -> None:
    make_client().get_reliable_topic("adopted", ReliableTopicConfig(capacity=4))
    client = make_client()
    config = ReliableTopicConfig(overload_policy=TopicOverloadPolicy.ERROR)

    topic = client.get_reliable_topic("adopted", config)

    assert client.get_reliable_topic("adopted", config) is topic
    assert topic.config.capacity == 4


def test_deliveries_are_counted_across_listeners_that_ended(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("counted")
    staying, leaving = Recorder(FROM_OLDEST), Recorder(FROM_OLDEST)
    topic.add_listener(staying)
    gone = topic.add_listener(leaving)
    topic.publish_all(range(3))
    eventually(lambda: len(staying.messages) == len(leaving.messages) == 3)

    topic.remove_listener(gone)
    topic.publish("more")
    eventually(lambda: len(staying.messages) == 4)

    assert topic.get_local_topic_stats().receive_operation_count == 7


def test_publishes_from_many_threads_are_all_counted(
    client: ReliableTopicClient,
) -> None:
    topic = client.get_reliable_topic("busy")

    def publish() -> None:
        for n in range(200):
            topic.publish(n)

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert topic.get_local_topic_stats().publish_operation_count == 800
