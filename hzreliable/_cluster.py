"""
What changes on Redis Cluster. A topic's keys share one hash tag, so every
command of a topic goes to one node; redis-py finds that node from a
command's keys, and this module routes the commands it would misplace.
Shared by the threaded and the asyncio clients.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from ._protocol import TopicKeys, after_id

__all__ = ["is_cluster", "queue_read", "route"]


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client, threaded or asyncio."""
    return isinstance(client, (RedisCluster, AsyncRedisCluster))


def route(client: Any, key: str) -> dict[str, Any]:
    """
    Keyword arguments that send a command to the node holding ``key``. A
    cluster client would send WAIT (keyless) to an arbitrary node, where it
    counts replicas of writes that never happened there, and SCRIPT LOAD to
    every primary, which fails while any one of them is down.
    """
    if is_cluster(client):
        return {"target_nodes": client.get_node_from_key(key)}
    return {}


def queue_read(
    client: Any, pipe: Any, keys: TopicKeys, sequence: int, count: int, block: int
) -> None:
    """
    Queue a listener's read on ``pipe``: the entries from ``sequence`` on,
    waiting up to ``block`` ms, then the topic's identity and the entry
    before ``sequence`` (for ``Cursor.check_previous``).
    """
    if not is_cluster(client):
        pipe.xread({keys.stream: after_id(sequence)}, count=count, block=block)
    else:
        # XREAD's keys follow a STREAMS keyword, so redis-py would ask a
        # node to find them (COMMAND GETKEYS) before every read; naming the
        # node saves that round trip and the dependence on a third node.
        pipe.execute_command(
            "XREAD", "COUNT", count, "BLOCK", block,
            "STREAMS", keys.stream, after_id(sequence),
            **route(client, keys.stream),
        )  # fmt: skip
    pipe.hget(keys.meta, "epoch")
    previous = after_id(sequence)  # the ID of sequence - 1
    pipe.xrange(keys.stream, previous, previous)
