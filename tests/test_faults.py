"""Faults on real redis-server processes: killed connections, crashes,
outages, paused servers, replication and ACLs."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from hzreliable import (
    FROM_OLDEST,
    ReliableTopicClient,
    ReliableTopicConfig,
    ReplicationAckError,
    TopicResetException,
)
from hzreliable._protocol import TopicKeys

from .conftest import Clients, eventually
from .helpers import Recorder
from .servers import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def aof_server(fresh_server: RedisServer) -> RedisServer:
    """A server that fsyncs every write, so a kill -9 loses nothing."""
    fresh_server.kill()
    fresh_server.extra = ["--appendonly", "yes", "--appendfsync", "always"]
    return fresh_server.start()


@pytest.fixture(params=["sync", "asyncio"])
def connect(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Make clients of one API on a server: opened from its URL, or around
    the caller's own ``redis.Redis`` (with redis-py's default retries)."""
    clients = Clients(request.param)

    def connect(
        server: RedisServer, made_by: str = "from_url", socket_timeout: float = 5
    ) -> Any:
        if made_by == "from_url":
            return clients.make(url=server.url)
        own = redis.Redis(port=server.port, socket_timeout=socket_timeout)
        return clients.make(own)

    yield connect
    clients.close()


def _listen(
    connect: Callable[..., Any], server: RedisServer, **config: Any
) -> tuple[Any, Any, Recorder, str]:
    client = connect(server)
    topic = client.get_reliable_topic("faulty", ReliableTopicConfig(**config))
    recorder = Recorder(FROM_OLDEST)
    registration = topic.add_listener(recorder)
    return client, topic, recorder, registration


def _publish_range(topic: Any, start: int, stop: int) -> None:
    for i in range(start, stop):
        topic.publish(i)


def test_a_killed_connection_loses_and_repeats_nothing(
    fresh_server: RedisServer, connect: Callable[..., Any]
) -> None:
    client, topic, recorder, _ = _listen(connect, fresh_server)
    _publish_range(topic, 0, 10)
    eventually(lambda: len(recorder.messages) == 10)

    for _ in range(3):
        fresh_server.client().client_kill_filter(_type="normal", skipme=True)
    _publish_range(topic, 10, 20)

    eventually(lambda: len(recorder.messages) == 20)
    assert recorder.received == list(range(20))
    assert recorder.cancelled == 0
    client.shutdown()


@pytest.mark.parametrize("made", ["from_url", "redis.Redis"])
def test_every_call_works_after_the_server_closed_idle_connections(
    fresh_server: RedisServer, made: str, connect: Callable[..., Any]
) -> None:
    client = connect(fresh_server, made)
    topic = client.get_reliable_topic("idle")
    topic.publish("before")
    admin = fresh_server.client()
    calls = {
        "get_reliable_topic": lambda: client.get_reliable_topic("other").name,
        "size": topic.ringbuffer.size,
        "read_many": lambda: [m.message for m in topic.ringbuffer.read_many(0, 5)],
        "add_listener": lambda: bool(topic.add_listener(Recorder())),
        "stats": lambda: topic.get_local_topic_stats().publish_operation_count,
        "publish": lambda: topic.publish("after"),
    }
    results = {}
    for name, call in calls.items():
        admin.client_kill_filter(_type="normal", skipme=True)
        results[name] = call()

    assert results == {
        "get_reliable_topic": "other",
        "size": 1,
        "read_many": ["before"],
        "add_listener": True,
        "stats": 1,
        "publish": 1,
    }
    # Each closed connection was replaced in place: one call at a time holds
    # one connection, however often the server closed it.
    inner = getattr(client, "inner", client)  # the asyncio client of a facade
    assert len(inner._wire._idle) == 1


def test_a_crash_and_restart_with_aof_loses_and_repeats_nothing(
    aof_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
    connect: Callable[..., Any],
) -> None:
    client, topic, recorder, registration = _listen(connect, aof_server)
    _publish_range(topic, 0, 10)
    eventually(lambda: len(recorder.messages) == 10)

    aof_server.kill()
    eventually(
        lambda: any("retry" in r.getMessage() for r in caplog.records),
        what="a retry warning",
    )
    aof_server.start()
    _publish_range(topic, 10, 20)

    eventually(lambda: len(recorder.messages) == 20)
    assert recorder.received == list(range(20))
    assert recorder.cancelled == 0
    stats = topic.get_local_topic_stats().listeners[registration]
    assert (stats.lost_count, stats.reset_count) == (0, 0)
    client.shutdown()


RETRY_LOG = re.compile(r"listener read failed .*; retry (\d+) in ([\d.]+)s")


def _sync(server: RedisServer) -> ReliableTopicClient:
    return ReliableTopicClient.from_url(server.url)


@pytest.mark.slow
def test_a_minute_long_outage_is_survived(
    aof_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client, topic, recorder, _ = _listen(_sync, aof_server)
    _publish_range(topic, 0, 5)
    eventually(lambda: len(recorder.messages) == 5)

    aof_server.kill()
    time.sleep(60)  # the outage itself is the point of this test
    aof_server.start()
    _publish_range(topic, 5, 10)

    eventually(lambda: len(recorder.messages) == 10, timeout=30)
    assert recorder.received == list(range(10))
    assert recorder.cancelled == 0
    attempts = [
        (int(found[1]), float(found[2]))
        for r in caplog.records
        if r.levelname == "WARNING"
        and (
            found := re.search(
                r"listener read failed .*; retry (\d+) in ([\d.]+)s", r.getMessage()
            )
        )
    ]
    # Capped backoff, each attempt numbered and its delay stated: a bounded
    # number of attempts, not a hot loop.
    assert 5 < len(attempts) < 200
    assert [number for number, _ in attempts] == list(range(1, len(attempts) + 1))
    assert max(delay for _, delay in attempts) <= 2.0
    assert "recovered after" in caplog.text
    client.shutdown()


@pytest.mark.parametrize("made", ["from_url", "redis.Redis"])
def test_remove_and_shutdown_stay_prompt_during_an_outage(
    fresh_server: RedisServer,
    made: str,
    caplog: pytest.LogCaptureFixture,
    connect: Callable[..., Any],
) -> None:
    client = connect(fresh_server, made)
    topic = client.get_reliable_topic("faulty")
    recorder = Recorder(FROM_OLDEST)
    registration = topic.add_listener(recorder)
    second = Recorder(FROM_OLDEST)
    topic.add_listener(second)
    fresh_server.kill()
    killed = time.monotonic()
    eventually(lambda: "listener read failed" in caplog.text)
    # The runners see the outage at once (their blocking reads fail) and
    # say so; redis-py's own reconnect attempts would hide it for seconds.
    assert time.monotonic() - killed < 1.0

    started = time.monotonic()
    assert topic.remove_listener(registration) is True
    removed = time.monotonic() - started
    client.shutdown()
    stopped = time.monotonic() - started

    assert removed < 0.5
    assert stopped < 0.5
    assert (recorder.cancelled, second.cancelled) == (1, 1)


@pytest.mark.parametrize("made", ["from_url", "redis.Redis"])
def test_publishing_during_an_outage_raises_redis_connection_error(
    fresh_server: RedisServer, made: str, connect: Callable[..., Any]
) -> None:
    client = connect(fresh_server, made)
    topic = client.get_reliable_topic("down")
    fresh_server.kill()

    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        topic.publish("lost")

    # Refused connections: hzreliable's own 3 retries (0.05 + 0.1 + 0.2 s of
    # backoff at most), not redis-py's retries on top of them.
    assert time.monotonic() - started < 1.0
    client.shutdown()


# Holds the server for 600 ms. Commands queued meanwhile still run once it
# ends, even from clients that gave up and reconnected, so a retried publish
# reaches the server twice. (Under CLIENT PAUSE the server drops the queued
# command of a client that disconnected, so only one attempt ever runs.)
BUSY_SCRIPT = """
local t = redis.call('TIME')
local stop = t[1] * 1e6 + t[2] + 600000
repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] > stop
return 1
"""


def _pause(admin: redis.Redis, how: str) -> Any:
    """Hold the server up; returns a function that waits for the hold."""
    if how == "client-pause":
        admin.client_pause(700, all=False)
        return lambda: None
    connection = admin.connection_pool.get_connection()
    # Sent before the publish on another socket; its reply is read later.
    connection.send_command("EVAL", BUSY_SCRIPT, 0)  # type: ignore[no-untyped-call]
    return connection.read_response


@pytest.mark.parametrize("how", ["client-pause", "busy-script"])
def test_a_publish_retried_after_a_lost_reply_is_stored_once(
    fresh_server: RedisServer, how: str, connect: Callable[..., Any]
) -> None:
    # redis-py retries a command whose reply timed out (0.2 s here) while the
    # server is held up; without deduplication the retry stores it again.
    client = connect(fresh_server, "redis.Redis", socket_timeout=0.2)
    topic = client.get_reliable_topic("once")
    topic.publish("warm-up")
    admin = fresh_server.client()
    results: list[Any] = []

    finish = _pause(admin, how)
    try:
        results.append(topic.publish("exactly-once"))
    except redis.RedisError as error:
        results.append(error)
    finish()

    eventually(lambda: admin.xlen(TopicKeys.of("once").stream) >= 1)
    time.sleep(0.8)  # let any duplicate the retries queued reach the server
    stored = [
        m.message
        for m in topic.ringbuffer.read_many(0, 10)
        if m.message == "exactly-once"
    ]
    if isinstance(results[0], int):
        assert stored == ["exactly-once"]
        assert topic.ringbuffer.read_one(results[0]).message == "exactly-once"
    else:
        assert len(stored) <= 1
    assert topic.ringbuffer.tail_sequence() <= 1
    client.shutdown()


@pytest.mark.parametrize("made", ["from_url", "redis.Redis"])
def test_a_publish_in_flight_during_shutdown_says_so(
    fresh_server: RedisServer,
    made: str,
    connect: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = connect(fresh_server, made)
    topic = client.get_reliable_topic("in-flight")
    topic.publish("warm-up")
    sending = _signal_script_calls(client, monkeypatch)
    admin = fresh_server.client()
    finish = _pause(admin, "busy-script")  # no replies for 0.6 s
    outcome: list[Any] = []

    def publish() -> None:
        try:
            outcome.append(topic.publish("raced"))
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=publish)
    thread.start()
    assert sending.wait(5)
    client.shutdown()  # closes the connection the publish waits on
    thread.join(10)
    finish()

    assert not thread.is_alive()
    # Either the publish got out before the close and is stored, or it says
    # the client was shut down: never an error from a connection torn away.
    (result,) = outcome
    if isinstance(result, BaseException):
        assert isinstance(result, RuntimeError), repr(result)
        assert "shut down" in str(result)
    else:
        assert result == 1
        stream = TopicKeys.of("in-flight").stream
        assert fresh_server.client().xlen(stream) == 2


def _signal_script_calls(client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An event set when the client next sends a script (either API)."""
    inner = getattr(client, "inner", client)  # the asyncio client of a facade
    original = inner._script
    sending = threading.Event()

    async def signal_async(*args: Any) -> Any:
        sending.set()
        return await original(*args)

    def signal(*args: Any) -> Any:
        sending.set()
        return original(*args)

    coroutine = asyncio.iscoroutinefunction(original)
    monkeypatch.setattr(inner, "_script", signal_async if coroutine else signal)
    return sending


def test_a_restart_without_persistence_is_a_reset(
    fresh_server: RedisServer, connect: Callable[..., Any]
) -> None:
    client, topic, recorder, registration = _listen(connect, fresh_server)
    _publish_range(topic, 0, 5)
    eventually(lambda: len(recorder.messages) == 5)

    fresh_server.kill()
    fresh_server.start()
    topic.publish("after")

    eventually(lambda: recorder.cancelled == 1)
    assert isinstance(topic.listener_error(registration), TopicResetException)
    client.shutdown()


def test_a_tolerant_listener_follows_a_restart_without_persistence(
    fresh_server: RedisServer, connect: Callable[..., Any]
) -> None:
    client = connect(fresh_server)
    topic = client.get_reliable_topic("faulty")
    recorder = Recorder(FROM_OLDEST, tolerant=True)
    topic.add_listener(recorder)
    _publish_range(topic, 0, 5)
    eventually(lambda: len(recorder.messages) == 5)

    fresh_server.kill()
    fresh_server.start()
    topic.publish("after")  # sequence 0 of the topic Redis now holds

    eventually(lambda: recorder.received == [0, 1, 2, 3, 4, "after"])
    assert recorder.sequences[-1] == 0
    assert recorder.cancelled == 0
    stats = topic.get_local_topic_stats()
    assert sum(listener.reset_count for listener in stats.listeners.values()) == 1


def test_replication_acknowledgement(fresh_server: RedisServer) -> None:
    replica = RedisServer("--replicaof", "127.0.0.1", str(fresh_server.port)).start()
    try:
        eventually(
            lambda: (
                fresh_server.client().info("replication").get("slave0", {}).get("state")
                == "online"
            ),
            what="the replica",
        )
        with ReliableTopicClient.from_url(fresh_server.url) as client:
            acked = client.get_reliable_topic(
                "acked", ReliableTopicConfig(replicas_to_ack=1)
            )
            assert acked.publish("safe") == 0
            greedy = client.get_reliable_topic(
                "greedy",
                ReliableTopicConfig(replicas_to_ack=2, replica_ack_timeout=0.2),
            )

            with pytest.raises(ReplicationAckError, match="1 of 2") as caught:
                greedy.publish("unsure")

            assert caught.value.sequences == [0]
        stream = TopicKeys.of("acked").stream
        assert replica.client().xlen(stream) == 1
    finally:
        replica.cleanup()


def _documented_acl_rule() -> str:
    """The ACL rule the README documents, with a password in place."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    found = re.search(r"^ACL SETUSER app (.*)$", readme, re.M)
    assert found is not None, "the README documents no ACL rule"
    return found.group(1).replace(">PASSWORD", ">s3cret")


def test_a_user_limited_to_the_library_keys_and_commands_can_do_everything(
    fresh_server: RedisServer,
) -> None:
    admin = fresh_server.client()
    admin.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", "app", *_documented_acl_rule().split()
    )
    url = f"redis://app:s3cret@127.0.0.1:{fresh_server.port}/0"

    with ReliableTopicClient.from_url(url) as client:
        topic = client.get_reliable_topic("guarded")
        recorder = Recorder(FROM_OLDEST)
        topic.add_listener(recorder)
        topic.publish_all([1, 2])
        assert topic.publish(3) == 2
        eventually(lambda: recorder.received == [1, 2, 3])
        assert topic.ringbuffer.size() == 3
        topic.destroy()
        # WAIT is allowed: with no replica it times out, it is not refused.
        acked = client.get_reliable_topic(
            "acked", ReliableTopicConfig(replicas_to_ack=1, replica_ack_timeout=0.05)
        )
        with pytest.raises(ReplicationAckError, match="0 of 1"):
            acked.publish("x")

        with pytest.raises(redis.exceptions.NoPermissionError):
            client.redis.set("elsewhere", 1)


def test_concurrent_publishers_survive_killed_connections(
    fresh_server: RedisServer, connect: Callable[..., Any]
) -> None:
    client, topic, recorder, _ = _listen(connect, fresh_server)
    stop = threading.Event()

    def killer() -> None:
        admin = fresh_server.client()
        while not stop.wait(0.05):
            admin.client_kill_filter(_type="normal", skipme=True)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        _publish_range(topic, 0, 200)
    finally:
        stop.set()
        thread.join()

    eventually(lambda: len(recorder.messages) == 200, timeout=30)
    assert recorder.received == list(range(200))
    client.shutdown()


def test_a_rediss_url_passes_tls_through_to_redis_py() -> None:
    server = RedisServer(tls=True).start()
    try:
        with ReliableTopicClient.from_url(server.url) as client:
            topic = client.get_reliable_topic("secret")
            recorder = Recorder(FROM_OLDEST)
            topic.add_listener(recorder)
            topic.publish_all(["over", "tls"])

            eventually(lambda: recorder.received == ["over", "tls"])
            assert isinstance(client.redis, redis.Redis)
            connection = client.redis.connection_pool.get_connection()
            try:
                assert type(connection).__name__ == "SSLConnection"
            finally:
                client.redis.connection_pool.release(connection)
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=server.port, socket_timeout=1).ping()
    finally:
        server.cleanup()
