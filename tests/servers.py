"""Real redis-server processes for the tests: start, kill, restart."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server on a free loopback port, in its own directory."""

    def __init__(
        self,
        *extra: str,
        port: int | None = None,
        tls: bool = False,
        config: str | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH")
        self.binary = binary
        self.extra = list(extra)
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hzreliable-redis-"))
        # A config file, for what only a file can say (a sentinel's, which
        # it also rewrites); command-line options still override it.
        self.config: list[str] = []
        if config is not None:
            (self.dir / "redis.conf").write_text(config)
            self.config = [str(self.dir / "redis.conf")]
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        self.tls = tls
        if tls:
            self._make_certificate()

    def _make_certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1, serving as its own CA."""
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("openssl is needed to make a test certificate")
        subprocess.run(
            [
                openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                "-keyout", str(self.dir / "key.pem"),
                "-out", str(self.dir / "cert.pem"),
                "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip

    @property
    def ca_file(self) -> str:
        return str(self.dir / "cert.pem")

    @property
    def url(self) -> str:
        if self.tls:
            return (
                f"rediss://127.0.0.1:{self.port}/0"
                f"?ssl_cert_reqs=required&ssl_ca_certs={self.ca_file}"
            )
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        if self.tls:
            listen = [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.dir / "cert.pem"),
                "--tls-key-file", str(self.dir / "key.pem"),
                "--tls-ca-cert-file", self.ca_file,
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        else:
            listen = ["--port", str(self.port)]
        args = [
            self.binary,
            *self.config,
            *listen,
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--logfile", str(self.dir / "redis.log"),
            *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(args)
        deadline = time.monotonic() + 10
        probe = self.client(socket_timeout=0.5)
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
        if self.tls:
            kwargs.update(ssl=True, ssl_ca_certs=self.ca_file)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


EXTERNAL_URL_VARIABLE = "HZRELIABLE_TEST_REDIS_URL"
"""Names a Redis for the behaviour tests to use instead of starting one."""


class ExternalServer(RedisServer):
    """
    A Redis the suite did not start (docker-compose's ``redis`` service, say),
    used in place of the session's own server by every behaviour test. The
    tests empty the URL's database (FLUSHDB) as they go: give them one of
    their own. Fault tests still start, kill and restart servers of their own.
    """

    def __init__(self, url: str) -> None:  # no binary, process or directory
        self._url = url
        parts = urlsplit(url)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 6379
        self.tls = False
        self.process = None

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> RedisServer:
        raise RuntimeError(f"{self._url} is not the suite's to start")

    def kill(self) -> None:
        raise RuntimeError(f"{self._url} is not the suite's to kill")

    stop = kill

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis.from_url(self._url, **kwargs)

    def cleanup(self) -> None:
        pass


def redis_server_required() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
