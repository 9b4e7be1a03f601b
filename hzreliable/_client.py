"""The threaded client: owns the Redis connection and the topic proxies."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from ._cluster import is_cluster, route
from ._codec import Codec, JsonCodec
from ._config import ReliableTopicConfig
from ._protocol import (
    TopicKeys,
    check_topic_name,
    new_epoch,
    ring_settings,
    same_settings,
)
from ._runner import ListenerRunner
from ._scripts import ENSURE, LuaScript
from ._topic import ReliableTopicProxy
from ._wire import Wire, of_redis_py, pack

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_URL", "HazelcastClient", "ReliableTopicClient"]

DEFAULT_URL = "redis://localhost:6379/0"
"""The Redis URL used when no client, ``url=`` or ``$REDIS_URL`` is given."""

# Limitation: an idle listener notices a stop only when its blocking read
# ends. Holding a dedicated connection per runner and sending CLIENT UNBLOCK
# on stop would make removal instant and allow a longer wait.
LISTENER_WAIT = 0.5
"""Longest single blocking read of a listener, in seconds; also bounds how
long stopping a listener may take while its topic is idle."""

JOIN_TIMEOUT = 2.0
"""How long shutdown, destroy and remove_listener wait for runner threads."""


URL_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 5.0,
    "socket_timeout": 10.0,
    "socket_keepalive": True,
}
"""Connection options of a client opened from a URL (the URL's own query
options win): without a socket timeout, a network partition that drops
packets silently would leave a publish or a read waiting forever."""


def resolve_url(url: str | None) -> str:
    return url or os.environ.get("REDIS_URL") or DEFAULT_URL


def socket_timeout_of(client: Any) -> float | None:
    if is_cluster(client):
        kwargs = client.get_connection_kwargs()
    else:
        kwargs = getattr(client, "connection_pool", None)
        kwargs = getattr(kwargs, "connection_kwargs", {})
    timeout = kwargs.get("socket_timeout")
    return float(timeout) if timeout else None


def block_ms(socket_timeout: float | None) -> int:
    """A blocking read must end well before the socket times out, or redis-py
    would take the idle wait for a dead connection."""
    wait = LISTENER_WAIT
    if socket_timeout is not None:
        wait = min(wait, socket_timeout / 2)
    return max(1, int(wait * 1000))


def private_twin(client: Any) -> Any:
    """
    A client of hzreliable's own on the same server as ``client``, or None
    when ``client`` itself will do. Works for the threaded and the asyncio
    redis-py clients alike.

    Two settings of a caller's client would break hzreliable's promises, so
    hzreliable then talks to Redis on a pool of its own with the same
    options otherwise: ``decode_responses`` (payloads may be any bytes) and
    redis-py's own command retries (its default ``Retry`` sleeps and
    reconnects inside a command, where a listener being removed or a client
    shutting down cannot interrupt it; hzreliable retries by itself, with
    deduplicated publishes and a backoff that a stop cuts short).
    """
    if is_cluster(client):
        # Limitation: a cluster client's options are spread over its nodes
        # and differ between redis-py versions, so no twin is built for it:
        # a decoding cluster client is refused, and a cluster client's own
        # retries stay (a stop may then wait for them).
        if client.get_encoder().decode_responses:
            raise ValueError(
                "hzreliable needs a RedisCluster made with decode_responses=False "
                "(messages are bytes); create one for hzreliable"
            )
        return None
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    retry = kwargs.get("retry")
    retries = retry is not None and retry.get_retries() > 0
    # Only redis-py's own connections lose a socket and retry on it.
    if not kwargs.get("decode_responses") and not (retries and of_redis_py(pool)):
        return None
    kwargs["decode_responses"] = False
    if retry is not None:
        kwargs["retry"] = type(retry)(NoBackoff(), 0)
    # The pool's own limits (how many connections, how long to wait for one
    # in a blocking pool) carry over too.
    kwargs["max_connections"] = pool.max_connections
    if hasattr(pool, "timeout"):
        kwargs["timeout"] = pool.timeout
    args: tuple[Any, ...] = ()
    if hasattr(pool, "sentinel_manager"):
        # A Sentinel pool finds its server through the sentinels; the twin
        # must ask them too, or it would stay on a demoted primary.
        args = (pool.service_name, pool.sentinel_manager)
        kwargs.update(is_master=pool.is_master, check_connection=pool.check_connection)
    twin_pool = type(pool)(*args, connection_class=pool.connection_class, **kwargs)
    twin = type(client)(connection_pool=twin_pool)
    # A client given a pool leaves it open on close; this pool is the twin's.
    twin.auto_close_connection_pool = True
    return twin


class ReliableTopicClient:
    """
    Entry point of the threaded API.

    Wraps your ``Redis``, ``RedisCluster`` (or ``fakeredis.FakeRedis``), or
    opens a ``Redis`` from ``url``, else from the ``REDIS_URL`` environment
    variable, else ``redis://localhost:6379/0``. Only connections it opened
    itself are closed by :meth:`shutdown`. Use it as a context manager to shut
    down on exit.
    """

    def __init__(
        self,
        redis: Redis | RedisCluster | None = None,
        *,
        url: str | None = None,
        codec: Codec | None = None,
    ) -> None:
        if redis is not None and url is not None:
            raise ValueError("pass either a redis client or a url, not both")
        self._owned: list[Redis | RedisCluster] = []
        if redis is None:
            redis = _open(resolve_url(url))
            self._owned.append(redis)
        twin = private_twin(redis)
        if twin is not None:
            self._owned.append(twin)
        self._redis: Redis | RedisCluster = twin or redis
        self._codec: Codec = codec or JsonCodec()
        self._wire = Wire.of(self._redis)
        self._block_ms = block_ms(socket_timeout_of(self._redis))
        self.join_timeout = JOIN_TIMEOUT
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._topics: dict[str, ReliableTopicProxy] = {}
        self._publisher = uuid.uuid4().hex[:16]
        self._local = threading.local()
        self._threads = itertools.count()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> ReliableTopicClient:
        """Open a client on ``url`` (``redis://``, ``rediss://``, ``unix://``)."""
        return cls(url=url, **kwargs)

    @property
    def redis(self) -> Redis | RedisCluster:
        """The Redis client in use (bytes responses)."""
        return self._redis

    def __enter__(self) -> ReliableTopicClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "shut down" if self._closed.is_set() else "open"
        return f"<ReliableTopicClient {state}, {len(self._topics)} topics>"

    def get_reliable_topic(
        self, name: str, config: ReliableTopicConfig | None = None
    ) -> ReliableTopicProxy:
        """
        Get or create the topic ``name``.

        Without ``config``, an existing topic's ring settings are adopted and
        a new topic gets the defaults. Ring settings given explicitly
        (``capacity``, ``time_to_live``) must match those stored in Redis, or
        :class:`TopicConfigConflictError` is raised and nothing changes.
        """
        self._check_open()
        check_topic_name(name)
        if config is not None and not isinstance(config, ReliableTopicConfig):
            raise TypeError(
                f"config must be a ReliableTopicConfig, not {type(config).__name__}"
            )
        with self._lock:
            existing = self._topics.get(name)
        if existing is not None:
            if config is None or same_settings(name, config, existing.config):
                return existing
            raise ValueError(
                f"topic {name!r} is already open in this client with another "
                "config; destroy() it or use the same config"
            )
        wanted = config or ReliableTopicConfig()
        keys = TopicKeys.of(name)
        stored = self._script(
            ENSURE, [keys.meta], [wanted.capacity, wanted.ttl_us, new_epoch()]
        )
        settled = ring_settings(name, config, stored)
        topic = ReliableTopicProxy(self, name, settled, str(stored[2], "utf-8"))
        with self._lock:
            return self._topics.setdefault(name, topic)

    def shutdown(self) -> None:
        """
        End every listener (``on_cancel`` runs), wait briefly for their
        threads, and close the connections this client opened. Idempotent.
        """
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            topics = list(self._topics.values())
            self._topics.clear()
        runners = [runner for topic in topics for runner in topic._stop_all()]
        self._join(runners)
        if self._wire is not None:
            self._wire.close()
        for owned in self._owned:
            owned.close()

    # ---------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise RuntimeError("the ReliableTopicClient was shut down")

    def _forget(self, topic: ReliableTopicProxy) -> None:
        with self._lock:
            if self._topics.get(topic.name) is topic:
                del self._topics[topic.name]

    def _join(self, runners: Iterable[ListenerRunner]) -> None:
        deadline = time.monotonic() + self.join_timeout
        current = threading.current_thread()
        for runner in runners:
            if runner is not current and runner.is_alive():
                runner.join(max(0.0, deadline - time.monotonic()))
            if runner.is_alive() and runner is not current:
                logger.warning(
                    "listener thread %s did not stop within %.1fs",
                    runner.name,
                    self.join_timeout,
                )

    def _publisher_token(self) -> tuple[str, int]:
        """A publisher id per thread and a counter per call, so a publish
        that redis-py retries after a lost reply is stored once."""
        local = self._local
        if not hasattr(local, "token"):
            local.token = f"{self._publisher}.{next(self._threads)}"
            local.counter = itertools.count(1)
        return local.token, next(local.counter)

    def _replicas_acked(self, key: str, config: ReliableTopicConfig) -> int:
        """WAIT for the replicas of the node that holds ``key``."""
        return self._redis.wait(
            config.replicas_to_ack,
            round(config.replica_ack_timeout * 1000),
            **route(self._redis, key),
        )

    def _script(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        try:
            return self._evalsha(script, keys, args)
        except NoScriptError:
            redis: Any = self._redis  # redis-py leaves execute_command untyped
            redis.execute_command("SCRIPT LOAD", script.source, **route(redis, keys[0]))
            return self._evalsha(script, keys, args)

    def _evalsha(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        if self._wire is not None:
            return self._wire.call(
                pack(["EVALSHA", script.sha, len(keys), *keys, *args])
            )
        return self._redis.evalsha(script.sha, len(keys), *keys, *args)


def _open(url: str) -> Redis:
    return Redis.from_url(url, **URL_OPTIONS)


HazelcastClient = ReliableTopicClient
"""The Hazelcast name for :class:`ReliableTopicClient`."""
