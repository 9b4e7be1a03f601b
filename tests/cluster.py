"""A local Redis Cluster of real redis-server processes, for the tests."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

from .servers import RedisServer, free_port, redis_server_required

READY_TIMEOUT = 30.0
"""Seconds a fresh or restarted cluster may take to report cluster_state:ok."""

NODE_TIMEOUT_MS = 5000
"""cluster-node-timeout: a node back within it is never marked as failed, so
restarting one causes no failover and no CLUSTERDOWN on the other nodes."""


@contextlib.contextmanager
def probe(node: RedisServer, timeout: float = 5) -> Iterator[redis.Redis]:
    """A plain connection to one node, closed on exit."""
    client = node.client(socket_timeout=timeout)
    try:
        yield client
    finally:
        client.close()


def need_cluster_tools() -> None:
    """Skip (or, under CI=true, fail) when the cluster binaries are missing."""
    missing = [b for b in ("redis-server", "redis-cli") if shutil.which(b) is None]
    if missing:
        absent = f"{' and '.join(missing)} not on PATH"
        if redis_server_required():
            pytest.fail(f"CI=true but {absent}; install redis-server (with redis-cli)")
        pytest.skip(f"{absent} (required when CI=true)")


class LocalCluster:
    """
    Primaries without replicas on free loopback ports, each in its own
    directory, so that one node can be stopped and restarted with its data
    (``aof=True``) and its cluster config (nodes.conf) intact.
    """

    def __init__(self, size: int = 3, *, aof: bool = False) -> None:
        self.nodes: list[RedisServer] = []
        for _ in range(size):
            extra = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                # The bus port defaults to port + 10000, which may be taken
                # or beyond 65535 for a random free port.
                "--cluster-port", str(free_port()),
            ]  # fmt: skip
            if aof:
                extra += ["--appendonly", "yes", "--appendfsync", "always"]
            self.nodes.append(RedisServer(*extra))

    def start(self) -> LocalCluster:
        try:
            for node in self.nodes:
                node.start()
            cli = shutil.which("redis-cli")
            if cli is None:
                raise RuntimeError("redis-cli is not on PATH")
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            options = ["--cluster-replicas", "0", "--cluster-yes"]
            subprocess.run(
                [cli, "--cluster", "create", *addresses, *options],
                check=True,
                capture_output=True,
                timeout=READY_TIMEOUT,
            )
            self.wait_ready()
        except BaseException:
            self.cleanup()
            raise
        return self

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll until every node says cluster_state:ok and knows every node."""
        deadline = time.monotonic() + timeout
        last: dict[int, Any] = {}
        while True:
            if all(self._node_ready(node, last) for node in self.nodes):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ready after {timeout}s: {last}")
            time.sleep(0.05)

    def _node_ready(self, node: RedisServer, last: dict[int, Any]) -> bool:
        try:
            with probe(node, 1) as client:
                info = client.cluster("info")
        except redis.RedisError as error:
            last[node.port] = repr(error)
            return False
        last[node.port] = info
        return bool(
            info.get("cluster_state") == "ok"
            and int(info.get("cluster_known_nodes", 0)) == len(self.nodes)
            and int(info.get("cluster_slots_ok", 0)) == 16384
        )

    @property
    def url(self) -> str:
        """A URL for ``RedisCluster.from_url``: any node leads to the rest."""
        return self.nodes[0].url

    def client(self, **kwargs: Any) -> redis.cluster.RedisCluster:
        """A threaded cluster client, made as docs/cluster.md shows."""
        return redis.cluster.RedisCluster.from_url(self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> redis.asyncio.cluster.RedisCluster:
        """An asyncio cluster client; make it inside the loop that uses it."""
        return redis.asyncio.cluster.RedisCluster.from_url(self.url, **kwargs)

    def keyslot(self, key: str) -> int:
        """The slot of ``key``, as CLUSTER KEYSLOT computes it."""
        with probe(self.nodes[0]) as client:
            return int(client.cluster("keyslot", key))

    def node_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot, asked of the cluster itself."""
        slot = self.keyslot(key)
        for node in self.nodes:
            if slot in self.slots_of(node):
                return node
        raise LookupError(f"no node serves slot {slot}")

    def slots_of(self, node: RedisServer) -> set[int]:
        """The slots ``node`` says it serves (CLUSTER SLOTS of that node)."""
        with probe(node) as client:
            ranges = client.cluster("slots")
        owned: set[int] = set()
        for first, last, primary, *_ in ranges:
            if int(primary[1]) == node.port:
                owned.update(range(int(first), int(last) + 1))
        return owned

    def flushall(self) -> None:
        for node in self.nodes:
            with probe(node) as client:
                client.flushall()

    def stop(self, node: RedisServer) -> None:
        """A clean shutdown (SIGTERM): an AOF is flushed to disk first."""
        node.stop()

    def kill(self, node: RedisServer) -> None:
        node.kill()

    def restart(self, node: RedisServer) -> None:
        """Start a stopped node again on its port and in its directory, and
        wait until the whole cluster serves every slot again."""
        node.start()
        self.wait_ready()

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()
