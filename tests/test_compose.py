"""docker-compose.yml, checked by a real Compose parser, and its example.

No Docker engine runs here: the file is validated by ``config`` (which needs
none) and the producer and consumer scripts run against a redis-server that
the test starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import eventually
from .helpers import run_command
from .servers import RedisServer

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
EXAMPLES = ROOT / "examples" / "compose"
PROFILES = ("test", "example")
PARSER_HINT = (
    "install Debian's docker-compose (apt-get install -y docker-compose) or "
    "the docker compose plugin"
)


# ------------------------------------------------------------ the parser


def ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def answers(command: list[str]) -> bool:
    try:
        result = subprocess.run(
            [*command, "version"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def find_parsers() -> list[list[str]]:
    """Every Compose implementation on PATH: the docker CLI plugin (v2) and
    the standalone ``docker-compose`` (Debian's is v1, written in Python)."""
    found: list[list[str]] = []
    docker = shutil.which("docker")
    if docker is not None and answers([docker, "compose"]):
        found.append([docker, "compose"])
    standalone = shutil.which("docker-compose")
    if standalone is not None and answers([standalone]):
        found.append([standalone])
    return found


@pytest.fixture(scope="module")
def parsers() -> list[list[str]]:
    found = find_parsers()
    if not found:
        if ci():
            pytest.fail(f"CI=true but no Compose parser is installed; {PARSER_HINT}")
        pytest.skip(f"no Compose parser (required when CI=true); {PARSER_HINT}")
    return found


def compose(
    parser: list[str], *args: str, file: Path = COMPOSE_FILE, profiles: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``parser -f file [--profile ...] args``. Compose v2 checks only the
    services of active profiles, so every profile is on unless told not."""
    # The user's COMPOSE_* and port settings must not change what is checked.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("COMPOSE_") and key != "HZR_REDIS_PORT"
    }
    selected = [arg for name in PROFILES for arg in ("--profile", name)]
    return subprocess.run(
        [*parser, "-f", str(file), *(selected if profiles else []), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=file.parent,
        env=env,
    )


def lines_of(result: subprocess.CompletedProcess[str]) -> set[str]:
    assert result.returncode == 0, result.stderr
    return {line.strip() for line in result.stdout.splitlines() if line.strip()}


def service_blocks(normalized: str) -> dict[str, str]:
    """Split ``config`` output into each service's text. Compose v1 and v2
    print different YAML layouts, so checks below look for content, not
    shape; there is no YAML parser among the project's dependencies."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    in_services = False
    for line in normalized.splitlines():
        if line and not line[0].isspace():
            in_services = line.rstrip() == "services:"
            current = None
            continue
        if not in_services:
            continue
        header = re.fullmatch(r"  ([A-Za-z0-9_.-]+):\s*", line)
        if header:
            current = blocks.setdefault(header.group(1), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(text) + "\n" for name, text in blocks.items()}


def profiles_of(block: str) -> list[str]:
    match = re.search(r"^\s+profiles:\s*\n((?:\s+- .*\n)+)", block, re.MULTILINE)
    if match is None:
        return []
    return [item.strip()[2:].strip() for item in match.group(1).splitlines()]


def test_the_compose_file_is_valid(parsers: list[list[str]]) -> None:
    for parser in parsers:
        for profiles in (False, True):
            result = compose(parser, "config", "-q", profiles=profiles)
            assert result.returncode == 0, f"{parser}: {result.stderr}"


@pytest.mark.parametrize(
    ("change", "mentioned"),
    [
        (
            ("    image: redis:7\n", "    image: redis:7\n    imagee: redis:7\n"),
            "imagee",
        ),
        (("retries: 30", "retries: lots"), "retries"),
        (("  example-setup:\n    <<", "  example-set-up:\n    <<"), "example-setup"),
    ],
    ids=["unknown-key", "wrong-type", "undefined-dependency"],
)
def test_the_parser_rejects_a_broken_copy(
    parsers: list[list[str]],
    tmp_path: Path,
    change: tuple[str, str],
    mentioned: str,
) -> None:
    # A "parser" that exits 0 whatever it reads would make the check above
    # worthless; each one found must refuse these mistakes.
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert change[0] in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    for parser in parsers:
        result = compose(parser, "config", "-q", file=broken)
        assert result.returncode != 0, f"{parser} accepted a broken file"
        assert mentioned in result.stderr, result.stderr


def test_profiles_services_and_volumes(parsers: list[list[str]]) -> None:
    for parser in parsers:
        assert lines_of(compose(parser, "config", "--profiles")) == set(PROFILES)
        assert lines_of(compose(parser, "config", "--services")) == {
            "redis",
            "test",
            "example-setup",
            "producer",
            "consumer",
        }
        assert lines_of(compose(parser, "config", "--volumes")) == {
            "redis-data",
            "example-venv",
            "consumer-state",
        }


def test_what_each_service_runs(parsers: list[list[str]]) -> None:
    for parser in parsers:
        result = compose(parser, "config")
        assert result.returncode == 0, result.stderr
        services = service_blocks(result.stdout)
        redis, test = services["redis"], services["test"]

        assert profiles_of(redis) == []
        assert "image: redis:7\n" in redis
        assert re.search(
            r"- --appendonly\s+- \"?yes\"?\s+- --appendfsync\s+- everysec", redis
        ), redis
        assert "redis-data" in redis
        assert "/data" in redis
        assert "redis-cli ping" in redis

        assert profiles_of(test) == ["test"]
        assert "image: python:3.11\n" in test
        assert "REDIS_URL: redis://redis:6379/0\n" in test
        # The behaviour tests use the compose Redis, in a database of theirs.
        assert "HZRELIABLE_TEST_REDIS_URL: redis://redis:6379/15\n" in test
        assert 'CI: "true"\n' in test
        assert "pip install" in test
        assert ".[dev]" in test
        assert "exec pytest" in test
        assert "condition: service_healthy" in test

        for name in ("producer", "consumer"):
            block = services[name]
            assert profiles_of(block) == ["example"], block
            assert f"examples/compose/{name}.py" in block
            assert "REDIS_URL: redis://redis:6379/0\n" in block
            assert "condition: service_healthy" in block
            assert "condition: service_completed_successfully" in block
        assert "consumer-state" in services["consumer"]
        assert "/state/orders-consumer.json" in services["consumer"]
        assert profiles_of(services["example-setup"]) == ["example"]


# ------------------------------------------------------- the example run


class Script:
    """An example script running in the background; its output (stdout and
    stderr together) is collected line by line as it comes."""

    def __init__(self, server: RedisServer, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "REDIS_URL": server.url},
            cwd=ROOT,
        )
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        def seen() -> str | None:
            if self.process.poll() is not None:
                self._reader.join(5)
                found = next((x for x in self.lines if x.startswith(prefix)), None)
                if found is None:
                    raise AssertionError(
                        f"exited {self.process.returncode} before printing "
                        f"{prefix!r}:\n" + "\n".join(self.lines)
                    )
                return found
            return next((x for x in self.lines if x.startswith(prefix)), None)

        found: str = eventually(seen, timeout, what=f"a line {prefix!r}")
        return found

    def finish(self, timeout: float = 60.0) -> tuple[int, list[str]]:
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code, self.lines

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


Start = Callable[..., Script]


@pytest.fixture
def start(fresh_server: RedisServer) -> Iterator[Start]:
    """Start example scripts on the test's own server; none outlives it."""
    started: list[Script] = []

    def run(name: str, *args: str) -> Script:
        script = Script(fresh_server, str(EXAMPLES / name), *args)
        started.append(script)
        return script

    yield run
    for script in started:
        script.kill()


def parsed(lines: list[str], verb: str) -> list[tuple[int, dict[str, Any]]]:
    """``verb SEQUENCE JSON`` lines as (sequence, event) pairs."""
    pairs = []
    for line in lines:
        if line.startswith(f"{verb} "):
            _, sequence, body = line.split(" ", 2)
            pairs.append((int(sequence), json.loads(body)))
    return pairs


def completed(script: Script) -> list[str]:
    code, lines = script.finish()
    assert code == 0, "\n".join(lines)
    return lines


def publish(start: Start, count: int) -> list[tuple[int, dict[str, Any]]]:
    lines = completed(start("producer.py", "--count", str(count), "--interval", "0"))
    return parsed(lines, "published")


def next_sequence(state: Path) -> int:
    stored: int = json.loads(state.read_text(encoding="utf-8"))["next_sequence"]
    return stored


@pytest.mark.redis
def test_a_restarted_consumer_resumes_at_the_next_sequence(
    start: Start, tmp_path: Path
) -> None:
    state = tmp_path / "volume" / "orders-consumer.json"
    first_orders = publish(start, 5)
    assert [seq for seq, _ in first_orders] == [0, 1, 2, 3, 4]
    assert {event["type"] for _, event in first_orders} == {"OrderCreated"}

    # No state file yet: the consumer starts at the oldest message.
    first = completed(start("consumer.py", "--state", str(state), "--count", "3"))
    assert "listening to 'orders' from the oldest message" in first
    assert next_sequence(state) == 3

    # Restarted before the next orders exist, so it replays 3..4 from the
    # stream and then takes 5..9 as they are published.
    second = start("consumer.py", "--state", str(state), "--count", "7")
    second.wait_for("listening to 'orders' from sequence 3")
    more_orders = publish(start, 5)
    assert [seq for seq, _ in more_orders] == [5, 6, 7, 8, 9]
    second_lines = completed(second)

    consumed = parsed(first, "consumed") + parsed(second_lines, "consumed")
    assert [seq for seq, _ in consumed] == list(range(10))
    assert consumed == first_orders + more_orders
    assert next_sequence(state) == 10


@pytest.mark.redis
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signals_stop_both_scripts_cleanly(
    start: Start, tmp_path: Path, signum: signal.Signals
) -> None:
    state = tmp_path / "orders-consumer.json"
    producer = start("producer.py", "--interval", "0.05")
    consumer = start("consumer.py", "--state", str(state))
    consumer.wait_for("consumed 2 ")
    eventually(lambda: state.exists() and next_sequence(state) >= 3, what="state")

    producer.process.send_signal(signum)
    consumer.process.send_signal(signum)

    produced = parsed(completed(producer), "published")
    consumer_lines = completed(consumer)
    consumed = parsed(consumer_lines, "consumed")
    assert consumer_lines[-1] == f"stopped after {len(consumed)} messages"
    assert [seq for seq, _ in consumed] == list(range(len(consumed)))
    assert consumed == produced[: len(consumed)]
    # The position is that of the last message printed, so a restart
    # resumes exactly after it.
    assert next_sequence(state) == len(consumed)
    publish(start, 1)
    resumed = start("consumer.py", "--state", str(state), "--count", "1")
    assert parsed(completed(resumed), "consumed")[0][0] == len(consumed)


@pytest.mark.redis
def test_a_position_beyond_the_topic_ends_the_consumer_loudly(
    start: Start, tmp_path: Path
) -> None:
    # A state file from before the topic was lost (Redis without its
    # volume): exiting non-zero beats silently waiting for sequence 50.
    state = tmp_path / "orders-consumer.json"
    state.write_text(json.dumps({"next_sequence": 50}), encoding="utf-8")
    publish(start, 1)

    code, lines = start("consumer.py", "--state", str(state)).finish()

    assert code == 1, "\n".join(lines)
    assert any("TopicResetException" in line for line in lines), lines
    assert next_sequence(state) == 50


# ---------------------------------------------------- the test profile's Redis


@pytest.mark.redis
def test_the_behaviour_tests_run_on_the_redis_the_profile_names(
    fresh_server: RedisServer,
) -> None:
    # The compose test profile points HZRELIABLE_TEST_REDIS_URL at its Redis;
    # the real-server half of a behaviour test must then run there, in the
    # database named, and nowhere else.
    fresh_server.client(db=0).set("left-alone", "yes")
    env = dict(os.environ, HZRELIABLE_TEST_REDIS_URL=f"{fresh_server.url[:-2]}/15")
    test = "tests/test_publish.py::test_sequences_are_contiguous_from_zero"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test]
    result = run_command(command, env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout  # fakeredis and real, each API
    assert "skipped" not in result.stdout
    stats = fresh_server.client().info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] > 0
    assert fresh_server.client(db=15).keys("hzreliable:*")  # its topic
    assert fresh_server.client(db=0).get("left-alone") == b"yes"
