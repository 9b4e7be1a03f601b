"""
Both APIs on a real three-primary Redis Cluster (and on Sentinel): the
behaviours of a topic, topics spread over the nodes, the commands that need
routing, and a node restarted underneath a listener.

Each scenario is one coroutine run by ``asyncio.run`` for either API: the
threaded client's calls return at once, the asyncio client's are awaited.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio.sentinel
import redis.sentinel

import hzreliable.asyncio as hz_async
from hzreliable import (
    FROM_OLDEST,
    ReliableTopicClient,
    ReliableTopicConfig,
    ReplicationAckError,
    StaleSequenceException,
    TopicOverloadException,
    TopicOverloadPolicy,
)
from hzreliable._protocol import TopicKeys

from .cluster import LocalCluster, need_cluster_tools, probe
from .conftest import eventually
from .helpers import Recorder
from .servers import RedisServer

pytestmark = pytest.mark.redis

APIS = ["sync", "asyncio"]

# redis-py leaves its Sentinel classes untyped.
Sentinel: Any = redis.sentinel.Sentinel
AsyncSentinel: Any = redis.asyncio.sentinel.Sentinel


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[LocalCluster]:
    need_cluster_tools()
    cluster = LocalCluster().start()
    yield cluster
    cluster.cleanup()


@pytest.fixture
def cluster(shared_cluster: LocalCluster) -> LocalCluster:
    """The module's cluster, emptied."""
    shared_cluster.flushall()
    return shared_cluster


@pytest.fixture(scope="module")
def aof_cluster() -> Iterator[LocalCluster]:
    """A cluster whose nodes keep every write in an AOF, to restart one."""
    need_cluster_tools()
    cluster = LocalCluster(aof=True).start()
    yield cluster
    cluster.cleanup()


@pytest.fixture(params=APIS)
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def ask(result: Any) -> Any:
    """The value of a call of either API."""
    if inspect.isawaitable(result):
        return await result
    return result


async def until(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> None:
    """``eventually`` that lets the event loop (asyncio listeners) run."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


class Clients:
    """Opens hzreliable clients of one API on a cluster; closes them all."""

    def __init__(self, api: str, cluster: LocalCluster) -> None:
        self.api = api
        self.cluster = cluster
        self.made: list[tuple[Any, Any]] = []

    def open(self, **redis_kwargs: Any) -> Any:
        client: Any
        # The connection is recorded first: it must be closed even when
        # hzreliable refuses it.
        if self.api == "sync":
            connection: Any = self.cluster.client(**redis_kwargs)
            self.made.append((None, connection))
            client = ReliableTopicClient(connection)
        else:
            connection = self.cluster.async_client(**redis_kwargs)
            self.made.append((None, connection))
            client = hz_async.ReliableTopicClient(connection)
        self.made[-1] = (client, connection)
        return client

    async def close(self) -> None:
        for client, connection in reversed(self.made):
            if client is not None:
                await ask(client.shutdown())
            if self.api == "sync":
                connection.close()
            else:
                await connection.aclose()


Scenario = Callable[[Clients], Awaitable[None]]


def run(api: str, cluster: LocalCluster, scenario: Scenario) -> None:
    async def main() -> None:
        clients = Clients(api, cluster)
        try:
            await scenario(clients)
        finally:
            await clients.close()

    asyncio.run(main())


def keys_on(node: RedisServer) -> set[Any]:
    with probe(node) as client:
        return set(client.keys("*"))


def command_calls(node: RedisServer) -> dict[str, int]:
    with probe(node) as client:
        stats = client.info("commandstats")
    return {name: int(value["calls"]) for name, value in stats.items()}


# ------------------------------------------------------------- publishing


def test_publish_sequences_ring_and_replay(api: str, cluster: LocalCluster) -> None:
    async def scenario(clients: Clients) -> None:
        topic = await ask(clients.open().get_reliable_topic("orders"))
        assert await ask(topic.publish({"n": 0})) == 0
        assert await ask(topic.publish_all([{"n": 1}, {"n": 2}])) == [1, 2]
        recorder = Recorder(FROM_OLDEST)
        await ask(topic.add_listener(recorder))
        assert await ask(topic.publish_all([{"n": 3}, {"n": 4}])) == [3, 4]

        await until(lambda: len(recorder.messages) == 5, what="the replay")
        assert recorder.received == [{"n": n} for n in range(5)]
        expected: list[tuple[str, int]] = []
        for sequence in range(5):
            expected += [("store", sequence), ("message", sequence)]
        assert recorder.calls == expected
        ring = topic.ringbuffer
        assert await ask(ring.head_sequence()) == 0
        assert await ask(ring.tail_sequence()) == 4
        assert await ask(ring.size()) == 5
        read = await ask(ring.read_many(1, 2))
        assert [m.message for m in read] == [{"n": 1}, {"n": 2}]

        await ask(topic.destroy())
        assert all(not keys_on(node) for node in cluster.nodes)
        assert recorder.cancelled == 1

    run(api, cluster, scenario)


@pytest.mark.parametrize("policy", ["ERROR", "DISCARD_NEWEST", "DISCARD_OLDEST"])
def test_a_full_ring_follows_its_policy(
    api: str, cluster: LocalCluster, policy: str
) -> None:
    config = ReliableTopicConfig(
        capacity=2, time_to_live=60, overload_policy=TopicOverloadPolicy(policy)
    )

    async def scenario(clients: Clients) -> None:
        topic = await ask(clients.open().get_reliable_topic(f"full-{policy}", config))
        assert await ask(topic.publish_all(["a", "b"])) == [0, 1]
        ring = topic.ringbuffer

        if policy == "ERROR":
            with pytest.raises(TopicOverloadException, match="ERROR"):
                await ask(topic.publish("c"))
            with pytest.raises(TopicOverloadException):
                await ask(topic.publish_all(["c"]))
            assert await ask(ring.tail_sequence()) == 1
        elif policy == "DISCARD_NEWEST":
            assert await ask(topic.publish("c")) is None
            assert await ask(topic.publish_all(["c", "d"])) == []
            assert [m.message for m in await ask(ring.read_many(0, 5))] == ["a", "b"]
        else:
            assert await ask(topic.publish("c")) == 2
            assert await ask(ring.head_sequence()) == 1
            assert [m.message for m in await ask(ring.read_many(1, 5))] == ["b", "c"]

    run(api, cluster, scenario)


def test_block_waits_for_the_retention_period(api: str, cluster: LocalCluster) -> None:
    config = ReliableTopicConfig(capacity=2, time_to_live=0.5)

    async def scenario(clients: Clients) -> None:
        topic = await ask(clients.open().get_reliable_topic("blocked", config))
        await ask(topic.publish_all(["a", "b"]))
        with pytest.raises(TopicOverloadException, match="timeout"):
            await ask(topic.publish("c", timeout=0.05))

        assert await ask(topic.publish("c")) == 2
        ring = topic.ringbuffer
        assert await ask(ring.head_sequence()) == 2

    run(api, cluster, scenario)


def test_block_without_a_retention_period_overwrites(
    api: str, cluster: LocalCluster
) -> None:
    config = ReliableTopicConfig(capacity=2, overload_policy=TopicOverloadPolicy.BLOCK)

    async def scenario(clients: Clients) -> None:
        topic = await ask(clients.open().get_reliable_topic("never-full", config))
        assert await ask(topic.publish_all(range(5))) == [0, 1, 2, 3, 4]
        assert await ask(topic.publish(5)) == 5
        ring = topic.ringbuffer
        assert (await ask(ring.head_sequence()), await ask(ring.size())) == (4, 2)

    run(api, cluster, scenario)


# -------------------------------------------------------------- listening


@pytest.mark.parametrize("tolerant", [True, False], ids=["tolerant", "strict"])
def test_loss_on_a_ring_of_three(
    api: str, cluster: LocalCluster, tolerant: bool
) -> None:
    config = ReliableTopicConfig(capacity=3)

    async def scenario(clients: Clients) -> None:
        topic = await ask(clients.open().get_reliable_topic("lossy", config))
        await ask(topic.publish_all(range(10)))
        recorder = Recorder(2, tolerant=tolerant)
        registration = await ask(topic.add_listener(recorder))

        if tolerant:
            await until(lambda: recorder.received == [7, 8, 9], what="the head")
            stats = await ask(topic.get_local_topic_stats())
            assert stats.listeners[registration].lost_count == 5
            assert recorder.cancelled == 0
        else:
            await until(lambda: recorder.cancelled == 1, what="the listener's end")
            error = topic.listener_error(registration)
            assert isinstance(error, StaleSequenceException)
            assert (error.sequence, error.head, error.lost) == (2, 7, 5)
            assert recorder.received == []

    run(api, cluster, scenario)


class Durable(Recorder):
    """Keeps its position where a new client finds it."""

    def __init__(self, saved: dict[str, int]) -> None:
        super().__init__(saved.get("next", FROM_OLDEST))
        self.saved = saved

    def store_sequence(self, sequence: int) -> None:
        super().store_sequence(sequence)
        self.saved["next"] = sequence + 1


def test_a_durable_listener_resumes_in_a_new_client(
    api: str, cluster: LocalCluster
) -> None:
    saved: dict[str, int] = {}

    async def scenario(clients: Clients) -> None:
        first = clients.open()
        topic = await ask(first.get_reliable_topic("durable"))
        recorder = Durable(saved)
        await ask(topic.add_listener(recorder))
        await ask(topic.publish_all(range(5)))
        await until(lambda: recorder.received == list(range(5)))
        await ask(first.shutdown())

        second = clients.open()
        later = await ask(second.get_reliable_topic("durable"))
        await ask(later.publish_all(range(5, 8)))
        resumed = Durable(saved)
        await ask(later.add_listener(resumed))

        await until(lambda: resumed.received == [5, 6, 7], what="the resumption")
        assert resumed.sequences == [5, 6, 7]
        assert saved["next"] == 8

    run(api, cluster, scenario)


# ------------------------------------------------------------- placement


def test_topics_spread_over_every_primary(api: str, cluster: LocalCluster) -> None:
    names = [f"spread-{i}" for i in range(20)]
    owners = {node.port: cluster.slots_of(node) for node in cluster.nodes}
    home: dict[str, int] = {}
    for name in names:
        slots = {cluster.keyslot(key) for key in TopicKeys.of(name).all}
        assert len(slots) == 1, f"the keys of {name!r} span slots {slots}"
        (slot,) = slots
        home[name] = next(port for port, owned in owners.items() if slot in owned)
    assert set(home.values()) == set(cluster.ports)

    async def scenario(clients: Clients) -> None:
        client = clients.open()
        topics = [await ask(client.get_reliable_topic(name)) for name in names]
        for topic in topics:
            assert await ask(topic.publish(topic.name)) == 0
            stream = TopicKeys.of(topic.name).stream
            assert client.redis.keyslot(stream) == cluster.keyslot(stream)
        for topic in topics:
            assert (await ask(topic.ringbuffer.read_one(0))).message == topic.name

    run(api, cluster, scenario)
    for node in cluster.nodes:
        expected = {
            key.encode()
            for name in names
            if home[name] == node.port
            for key in TopicKeys.of(name).all
        }
        assert keys_on(node) == expected


def test_wait_and_script_load_go_to_the_topic_node(
    api: str, cluster: LocalCluster
) -> None:
    config = ReliableTopicConfig(replicas_to_ack=1, replica_ack_timeout=0.05)
    home = cluster.node_of(TopicKeys.of("acked").stream)

    async def scenario(clients: Clients) -> None:
        topic = await ask(clients.open().get_reliable_topic("acked", config))
        for node in cluster.nodes:
            with probe(node) as client:
                client.config_resetstat()
        with probe(home) as client:
            client.script_flush()

        # No node has a replica, so WAIT counts none, but the message is
        # stored: the scripts were loaded again where the topic lives.
        with pytest.raises(ReplicationAckError) as caught:
            await ask(topic.publish("m"))
        assert caught.value.sequences == [0]
        assert await ask(topic.ringbuffer.tail_sequence()) == 0

    run(api, cluster, scenario)
    for node in cluster.nodes:
        calls = command_calls(node)
        waits = calls.get("cmdstat_wait", 0)
        loads = calls.get("cmdstat_script|load", 0)
        if node is home:
            assert waits == 1
            assert loads >= 1
        else:
            assert (waits, loads) == (0, 0), f"node {node.port} was asked"


# The README's rule plus what redis-py's cluster client needs to find the
# nodes (CLUSTER SLOTS) and the keys of commands (COMMAND); docs/cluster.md.
CLUSTER_ACL_RULE = (
    "on >secret resetkeys ~hzreliable:* resetchannels -@all "
    "+evalsha +script|load +xread +xrange +hget +del +wait +ping "
    "+time +hmget +hset +hlen +exists +xadd +xtrim +xlen +xinfo|stream "
    "+cluster|slots +command"
)


def test_a_user_limited_to_the_documented_commands_can_do_everything(
    api: str, cluster: LocalCluster
) -> None:
    for node in cluster.nodes:
        with probe(node) as client:
            client.execute_command(  # type: ignore[no-untyped-call]
                "ACL", "SETUSER", "app", *CLUSTER_ACL_RULE.split()
            )

    async def scenario(clients: Clients) -> None:
        client = clients.open(username="app", password="secret")
        topic = await ask(client.get_reliable_topic("limited"))
        recorder = Recorder(FROM_OLDEST)
        await ask(topic.add_listener(recorder))
        await ask(topic.publish_all(["a", "b"]))
        await until(lambda: recorder.received == ["a", "b"])
        assert (await ask(topic.ringbuffer.read_one(1))).message == "b"
        await ask(topic.destroy())

    try:
        run(api, cluster, scenario)
    finally:
        for node in cluster.nodes:
            with probe(node) as client:
                client.acl_deluser("app")


def test_a_decoding_cluster_client_is_refused(api: str, cluster: LocalCluster) -> None:
    async def scenario(clients: Clients) -> None:
        with pytest.raises(ValueError, match="decode_responses=False"):
            clients.open(decode_responses=True)

    run(api, cluster, scenario)


# ---------------------------------------------------------------- faults


def test_a_restarted_node_loses_and_repeats_nothing(
    api: str, aof_cluster: LocalCluster
) -> None:
    aof_cluster.flushall()
    home = aof_cluster.node_of(TopicKeys.of("restart").stream)
    elsewhere = next(
        f"away-{i}"
        for i in range(100)
        if aof_cluster.node_of(TopicKeys.of(f"away-{i}").stream) is not home
    )

    async def scenario(clients: Clients) -> None:
        client = clients.open()
        topic = await ask(client.get_reliable_topic("restart"))
        away = await ask(client.get_reliable_topic(elsewhere))
        recorder = Recorder(FROM_OLDEST)
        await ask(topic.add_listener(recorder))
        await ask(topic.publish_all(range(5)))
        await until(lambda: len(recorder.messages) == 5)

        aof_cluster.stop(home)
        # The other slots are served meanwhile.
        assert await ask(away.publish("still here")) == 0
        aof_cluster.restart(home)
        for i in range(5, 10):
            await ask(topic.publish(i))

        await until(lambda: len(recorder.messages) >= 10, 30, "the reconnection")
        await asyncio.sleep(0.2)  # room for a duplicate to show up
        assert recorder.received == list(range(10))
        assert recorder.sequences == list(range(10))
        assert recorder.cancelled == 0
        assert await ask(topic.ringbuffer.head_sequence()) == 0

    run(api, aof_cluster, scenario)


# -------------------------------------------------------------- Sentinel


@pytest.fixture(scope="module")
def sentinel() -> Iterator[RedisServer]:
    """A sentinel watching one primary, named "main"."""
    need_cluster_tools()
    primary = RedisServer().start()
    watcher = RedisServer(
        "--sentinel", config=f"sentinel monitor main 127.0.0.1 {primary.port} 1\n"
    )
    try:
        watcher.start()
        manager = Sentinel([("127.0.0.1", watcher.port)], socket_timeout=5)
        try:
            eventually(lambda: manager.discover_master("main"), what="the sentinel")
        finally:
            for connection in manager.sentinels:
                connection.close()
        yield watcher
    finally:
        watcher.cleanup()
        primary.cleanup()


@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "decoding"])
def test_a_sentinel_master_serves_as_the_client(
    api: str, sentinel: RedisServer, decode: bool
) -> None:
    sentinels = [("127.0.0.1", sentinel.port)]

    async def scenario() -> None:
        connection: Any
        client: Any
        if api == "sync":
            manager: Any = Sentinel(sentinels, socket_timeout=5)
            connection = manager.master_for("main", decode_responses=decode)
            client = ReliableTopicClient(connection)
        else:
            manager = AsyncSentinel(sentinels, socket_timeout=5)
            connection = manager.master_for("main", decode_responses=decode)
            client = hz_async.ReliableTopicClient(connection)
        try:
            topic = await ask(client.get_reliable_topic(f"watched-{api}-{decode}"))
            recorder = Recorder(FROM_OLDEST)
            await ask(topic.add_listener(recorder))
            await ask(topic.publish_all([b"\xff raw", {"n": 1}]))
            await until(lambda: recorder.received == [b"\xff raw", {"n": 1}])
            await ask(topic.destroy())
        finally:
            await ask(client.shutdown())
            for opened in [connection, *manager.sentinels]:
                await ask(opened.close() if api == "sync" else opened.aclose())

    asyncio.run(scenario())
