"""
A short path to Redis for hzreliable's own hot commands.

redis-py spends more time in Python per command (argument encoding, the
pool's checks on every checkout, its retry wrapper) than Redis spends running
a publish script. For a plain ``redis.Redis`` or ``redis.asyncio.Redis`` on
one of redis-py's own connection classes, hzreliable encodes its script
calls itself and sends them on connections it keeps checked out of the
client's pool. Any other client (fakeredis, ``RedisCluster``, a pool with
client-side caching, a connection class of your own) goes through redis-py's
ordinary command path, which gives the same replies.

A connection that fails mid-command is dropped, as redis-py drops it (a
reply may still be on its way), and the error propagates to hzreliable's own
retries; an error reply (``ResponseError``) leaves the connection usable.
A kept connection that the server closed while it sat idle (a restart,
``CLIENT KILL``, an idle timeout) is what a pool would have noticed before
handing it out: the same connection reconnects and sends the command once
more. Every command hzreliable sends this way is safe to repeat: its scripts
only read, create what is missing, or store a publish at most once.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

__all__ = ["AsyncWire", "Wire", "pack"]


def pack(args: list[Any]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)


def of_redis_py(pool: Any) -> bool:
    """Does ``pool`` make redis-py's own connections? A test double (such as
    fakeredis) or a class of the caller's own may not speak RESP on a real
    socket, and never loses a connection the way a socket does."""
    connection_class = getattr(pool, "connection_class", None)
    return isinstance(
        connection_class, type
    ) and connection_class.__module__.startswith("redis.")


def _eligible(client: Any, connection_base: type) -> bool:
    pool = getattr(client, "connection_pool", None)
    if pool is None or getattr(pool, "cache", None) is not None:
        return False
    return of_redis_py(pool) and issubclass(pool.connection_class, connection_base)


class Wire:
    """Sends packed commands for a threaded ``redis.Redis``; thread-safe."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    @classmethod
    def of(cls, client: Any) -> Wire | None:
        """A wire for ``client``, or None where redis-py's path must be used."""
        from redis.connection import AbstractConnection

        if not _eligible(client, AbstractConnection):
            return None
        return cls(client.connection_pool)

    def call(self, command: bytes) -> Any:
        """Send one packed command and return its raw reply."""
        connection, kept = self._take()
        try:
            try:
                return _exchange(connection, command)
            except RedisConnectionError:
                if not kept:
                    raise
            return _exchange(connection, command)  # reconnects: once more
        finally:
            self._give(connection)

    def close(self) -> None:
        """Hand every kept connection back to the pool."""
        with self._lock:
            idle, self._idle = self._idle, []
        if self._pid == os.getpid():
            for connection in idle:
                self._pool.release(connection)

    def _take(self) -> tuple[Any, bool]:
        """A connection, and whether it is one kept from an earlier call."""
        with self._lock:
            if self._pid != os.getpid():
                # A forked child must not share its parent's sockets; the
                # pool resets itself in the child the same way.
                self._idle, self._pid = [], os.getpid()
            if self._idle:
                return self._idle.pop(), True
        return self._pool.get_connection(), False

    def _give(self, connection: Any) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._idle.append(connection)


def _exchange(connection: Any, command: bytes) -> Any:
    try:
        connection.send_packed_command([command], check_health=False)
        return connection.read_response()
    except ResponseError:
        raise  # a whole reply was read: the connection is fine
    except BaseException:
        # Failed mid-command: a reply may still be on its way, so the
        # socket must not be read again.
        connection.disconnect()
        raise


class AsyncWire:
    """Sends packed commands for a ``redis.asyncio.Redis``, on one loop."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._idle: list[Any] = []

    @classmethod
    def of(cls, client: Any) -> AsyncWire | None:
        """A wire for ``client``, or None where redis-py's path must be used."""
        from redis.asyncio.connection import AbstractConnection

        if not _eligible(client, AbstractConnection):
            return None
        return cls(client.connection_pool)

    async def call(self, command: bytes) -> Any:
        """Send one packed command and return its raw reply."""
        kept = bool(self._idle)
        connection = self._idle.pop() if kept else await self._pool.get_connection()
        try:
            try:
                return await _exchange_async(connection, command)
            except RedisConnectionError:
                if not kept:
                    raise
            return await _exchange_async(connection, command)  # reconnects
        finally:
            self._idle.append(connection)

    async def close(self) -> None:
        """Hand every kept connection back to the pool."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await self._pool.release(connection)


async def _exchange_async(connection: Any, command: bytes) -> Any:
    try:
        await connection.send_packed_command([command], check_health=False)
        return await connection.read_response()
    except ResponseError:
        raise
    except BaseException:
        # Cancelled or failed mid-command: the reply may still come.
        await connection.disconnect()
        raise
