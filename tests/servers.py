"""Real redis-server processes for the tests: start, kill, restart."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server on a free loopback port, in its own directory."""

    def __init__(self, *extra: str, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH")
        self.binary = binary
        self.extra = list(extra)
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hzreliable-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--logfile", str(self.dir / "redis.log"),
            *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(args)
        deadline = time.monotonic() + 10
        probe = redis.Redis(port=self.port, socket_timeout=0.5)
        try:
            while True:
                try:
                    if probe.ping():
                        return self
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        log = (self.dir / "redis.log").read_text(errors="replace")
                        raise RuntimeError(
                            f"redis-server did not start:\n{log}"
                        ) from None
                    time.sleep(0.02)
        finally:
            probe.close()

    def kill(self) -> None:
        """SIGKILL: no chance to save anything."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(port=self.port, **kwargs)  # type: ignore[arg-type]

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_server_required() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
