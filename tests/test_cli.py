"""The command line, run as a user runs it: a subprocess per command."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from hzreliable import ReliableTopicClient, ReliableTopicConfig

from .conftest import eventually
from .helpers import ROOT, run_command
from .servers import RedisServer

UNREACHABLE = "redis://127.0.0.1:1/0"
TAIL_LINE = re.compile(r"^(\d+)  (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00)  (.*)$")


def _env(url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    if url is not None:
        env["REDIS_URL"] = url
    return env


def cli(
    *args: str, url: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m hzreliable ARGS`` with REDIS_URL set to ``url``."""
    command = [sys.executable, "-m", "hzreliable", *args]
    return run_command(command, _env(url), stdin, timeout=60)


def ok(*args: str, url: str, stdin: str | None = None) -> str:
    result = cli(*args, url=url, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hzreliable: ")
    return lines[0]


def stored(server: RedisServer, name: str) -> list[Any]:
    """Every retained message of a topic, read with the library."""
    with ReliableTopicClient(server.client()) as client:
        ring = client.get_reliable_topic(name).ringbuffer
        return [m.message for m in ring.read_many(ring.head_sequence(), 1000)]


class Running:
    """A command left running, its output collected line by line."""

    def __init__(self, *args: str, url: str, stdin: bool = False) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hzreliable", *args],
            env=_env(url),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=_collect, args=(stream, lines), daemon=True)
            for stream, lines in [
                (self.process.stdout, self.out),
                (self.process.stderr, self.err),
            ]
        ]
        for reader in self._readers:
            reader.start()

    def send(self, text: str) -> None:
        """Write ``text`` to the command's stdin (started with stdin=True)."""
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def close_stdin(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    def stderr_with(self, text: str, timeout: float = 20) -> str:
        line: str = eventually(
            lambda: next((line for line in self.err if text in line), None),
            timeout,
            f"{text!r} on stderr (so far {self.err})",
        )
        return line

    def stdout_lines(self, count: int, timeout: float = 20) -> list[str]:
        eventually(
            lambda: len(self.out) >= count,
            timeout,
            f"{count} lines on stdout (so far {self.out}, stderr {self.err})",
        )
        return self.out[:count]

    def finish(self, timeout: float = 20) -> int:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()


def _collect(stream: IO[str] | None, lines: list[str]) -> None:
    assert stream is not None
    for line in stream:
        lines.append(line.rstrip("\n"))


@pytest.fixture
def running() -> Iterator[list[Running]]:
    """Commands started by a test; killed at its end if still running."""
    started: list[Running] = []
    yield started
    for command in started:
        command.stop()


@pytest.fixture
def url(redis_server: RedisServer) -> str:
    """The session server, emptied for this test."""
    redis_server.client().flushdb()
    return redis_server.url


# ------------------------------------------------------------------ publish


@pytest.mark.redis
def test_publish_sends_json_when_it_parses_and_text_otherwise(
    url: str, redis_server: RedisServer
) -> None:
    outputs = [
        ok("publish", "orders", '{"type": "OrderCreated", "n": 1}', url=url),
        ok("publish", "orders", "42", url=url),
        ok("publish", "orders", "hello world", url=url),
        ok("publish", "orders", "NaN", url=url),
    ]

    assert outputs == ["0\n", "1\n", "2\n", "3\n"]
    assert stored(redis_server, "orders") == [
        {"type": "OrderCreated", "n": 1},
        42,
        "hello world",
        "NaN",
    ]


@pytest.mark.redis
def test_publish_dash_sends_each_stdin_line(
    url: str, redis_server: RedisServer
) -> None:
    out = ok(
        "publish", "lines", "-", url=url, stdin='{"a": 1}\n\nplain text\r\n[1, 2]\n'
    )

    assert out.splitlines() == ["0", "1", "2"]
    assert stored(redis_server, "lines") == [{"a": 1}, "plain text", [1, 2]]


@pytest.mark.redis
def test_publish_json_output_is_one_object_per_message(url: str) -> None:
    single = ok("publish", "--json", "topic", "x", url=url)
    lines = ok("--json", "publish", "topic", url=url, stdin="a\nb\n")
    batch = ok("publish", "topic", "--batch", "--json", url=url, stdin="c\nd\ne\n")

    assert json.loads(single) == {"sequences": [0]}
    assert [json.loads(line) for line in lines.splitlines()] == [
        {"sequences": [1]},
        {"sequences": [2]},
    ]
    assert [json.loads(line) for line in batch.splitlines()] == [
        {"sequences": [3, 4, 5]}
    ]


@pytest.mark.redis
def test_publish_to_a_full_ring_follows_the_policy(url: str) -> None:
    ok("publish", "ring", "a", "--capacity", "2", "--time-to-live", "60", url=url)
    ok("publish", "ring", "b", url=url)

    refused = cli("publish", "ring", "c", "--policy", "ERROR", url=url)
    timed_out = cli("publish", "ring", "c", "--timeout", "0.1", url=url)
    dropped = cli("publish", "ring", "c", "--policy", "discard_newest", url=url)
    dropped_json = ok(
        "publish", "ring", "c", "--policy", "DISCARD_NEWEST", "--json", url=url
    )

    assert "full" in assert_one_line_error(refused, 1)
    assert "timeout" in assert_one_line_error(timed_out, 1)
    assert (dropped.returncode, dropped.stdout) == (0, "discarded\n")
    assert json.loads(dropped_json) == {"sequences": []}


@pytest.mark.redis
def test_publish_refuses_ring_settings_that_differ_from_the_stored_ones(
    url: str,
) -> None:
    ok("publish", "ring", "a", "--capacity", "5", url=url)

    conflict = cli("publish", "ring", "b", "--capacity", "6", url=url)
    invalid = cli("publish", "other", "b", "--capacity", "0", url=url)

    assert "capacity=5" in assert_one_line_error(conflict, 2)
    assert "capacity" in assert_one_line_error(invalid, 2)


# --------------------------------------------------------------------- info


@pytest.mark.redis
def test_info_of_a_missing_topic_fails_without_creating_it(
    url: str, redis_server: RedisServer
) -> None:
    result = cli("info", "ghost", url=url)

    assert "does not exist" in assert_one_line_error(result, 1)
    assert redis_server.client().keys("*") == []


@pytest.mark.redis
def test_info_describes_the_ring_before_and_after_publishes(url: str) -> None:
    ok("publish", "orders", "first", url=url)
    before = json.loads(ok("info", "orders", "--json", url=url))
    ok("publish", "orders", "-", url=url, stdin="a\nb\n")
    after = json.loads(ok("--json", "info", "orders", url=url))
    human = ok("info", "orders", url=url)

    assert before == {
        "topic": "orders",
        "capacity": 10000,
        "time_to_live": 0,
        "head": 0,
        "tail": 0,
        "size": 1,
        "remaining_capacity": 10000,
        "full": False,
    }
    assert (after["head"], after["tail"], after["size"]) == (0, 2, 3)
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in human.splitlines())
    assert rows["topic"] == "orders"
    assert rows["size"] == "3"
    assert rows["tail"] == "2"
    assert rows["full"] == "no"


@pytest.mark.redis
def test_info_reports_a_full_ring_only_with_a_retention_period(url: str) -> None:
    kept_args = ["publish", "kept", "-", "--capacity", "2", "--time-to-live", "60"]
    ok(*kept_args, url=url, stdin="a\nb\n")
    ok("publish", "rolling", "-", "--capacity", "2", url=url, stdin="a\nb\nc\n")

    kept = json.loads(ok("info", "kept", "--json", url=url))
    rolling = json.loads(ok("info", "rolling", "--json", url=url))

    assert (kept["full"], kept["remaining_capacity"], kept["time_to_live"]) == (
        True,
        0,
        60,
    )
    assert (rolling["full"], rolling["remaining_capacity"]) == (False, 2)
    assert (rolling["head"], rolling["tail"], rolling["size"]) == (1, 2, 2)


# --------------------------------------------------------------------- tail


@pytest.mark.redis
def test_tail_from_oldest_prints_the_retained_messages_and_stops_at_count(
    url: str,
) -> None:
    ok("publish", "orders", "-", url=url, stdin='{"n": 1}\nsecond\n3\n')

    result = cli("tail", "orders", "--from", "oldest", "--count", "2", url=url)

    assert result.returncode == 0, result.stderr
    lines = [TAIL_LINE.match(line) for line in result.stdout.splitlines()]
    assert all(lines), result.stdout
    assert [(m[1], json.loads(m[3])) for m in lines if m] == [
        ("0", {"n": 1}),
        ("1", "second"),
    ]
    assert "listening on orders from 0" in result.stderr


@pytest.mark.redis
def test_tail_from_a_sequence_in_json(url: str) -> None:
    ok("publish", "orders", "-", url=url, stdin="a\nb\nc\n")

    out = ok("tail", "orders", "--from", "1", "--count", "2", "--json", url=url)

    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["sequence"], r["message"]) for r in records] == [(1, "b"), (2, "c")]
    assert all(isinstance(r["publish_time"], float) for r in records)
    assert set(records[0]) == {"sequence", "publish_time", "message"}


@pytest.mark.redis
def test_tail_from_latest_prints_what_is_published_after_it_listens(
    url: str, running: list[Running]
) -> None:
    ok("publish", "live", "-", url=url, stdin="old-0\nold-1\n")
    tail = Running("tail", "live", "--count", "3", "--json", url=url)
    running.append(tail)

    tail.stderr_with("listening on live from 2")
    ok("publish", "live", "-", url=url, stdin="new-2\nnew-3\nnew-4\n")

    assert tail.finish() == 0, tail.err
    assert [json.loads(line)["message"] for line in tail.out] == [
        "new-2",
        "new-3",
        "new-4",
    ]


@pytest.mark.redis
def test_tail_waits_for_a_missing_topic_and_prints_it_from_the_start(
    url: str, running: list[Running], redis_server: RedisServer
) -> None:
    tail = Running("tail", "later", "--count", "2", url=url)
    running.append(tail)

    tail.stderr_with("waiting for topic later")
    assert redis_server.client().keys("*") == []  # tail must not create it
    ok("publish", "later", "-", "--capacity", "7", url=url, stdin="a\nb\n")

    assert tail.finish() == 0, tail.err
    assert [line.split("  ")[2] for line in tail.out] == ['"a"', '"b"']
    assert json.loads(ok("info", "later", "--json", url=url))["capacity"] == 7


@pytest.mark.redis
def test_tail_skips_lost_messages_unless_strict(url: str) -> None:
    ok("publish", "small", "-", "--capacity", "2", url=url, stdin="a\nb\nc\n")

    tolerant = cli("tail", "small", "--from", "0", "--count", "2", "--json", url=url)
    strict = cli("tail", "small", "--from", "0", "--strict", url=url)

    assert tolerant.returncode == 0, tolerant.stderr
    assert [json.loads(line)["sequence"] for line in tolerant.stdout.splitlines()] == [
        1,
        2,
    ]
    assert "1 messages lost" in tolerant.stderr
    assert strict.returncode == 1
    assert strict.stdout == ""
    assert "Traceback" not in strict.stderr
    last = strict.stderr.splitlines()[-1]
    assert last.startswith("hzreliable: tail ended:")
    assert "stale" in last
    # The library's own report of the ending is not repeated.
    assert sum("ended" in line for line in strict.stderr.splitlines()) == 1


@pytest.mark.redis
def test_tail_exits_130_on_ctrl_c(url: str, running: list[Running]) -> None:
    ok("publish", "quiet", "x", url=url)
    tail = Running("tail", "quiet", url=url)
    running.append(tail)
    tail.stderr_with("listening on quiet")

    tail.process.send_signal(signal.SIGINT)

    assert tail.finish() == 130
    assert not any("Traceback" in line for line in tail.err), tail.err


# ------------------------------------------------- Redis failing mid-command

RETRY_WARNING = re.compile(r"^hzreliable: warning: topic '\w+': publish failed .*")


@pytest.mark.redis
def test_publish_ends_with_exit_1_when_redis_dies_between_stdin_lines(
    fresh_server: RedisServer, running: list[Running]
) -> None:
    publish = Running("publish", "lines", "-", url=fresh_server.url, stdin=True)
    running.append(publish)
    publish.send("first\n")
    publish.stdout_lines(1)

    fresh_server.kill()
    publish.send("second\n")
    publish.close_stdin()

    assert publish.finish() == 1, publish.err
    assert publish.out == ["0"]  # what reached Redis, and nothing more
    assert not any("Traceback" in line for line in publish.err), publish.err
    *retries, error = publish.err
    assert error.startswith("hzreliable: Redis failed: "), publish.err
    # The retries promised in docs/cli.md come first, one warning each.
    assert len(retries) == 3, publish.err
    assert all(RETRY_WARNING.match(line) for line in retries), publish.err


@pytest.mark.redis
def test_tail_waiting_for_its_topic_ends_with_exit_1_when_redis_dies(
    fresh_server: RedisServer, running: list[Running]
) -> None:
    tail = Running("tail", "later", url=fresh_server.url)
    running.append(tail)
    tail.stderr_with("waiting for topic later")

    fresh_server.kill()

    assert tail.finish() == 1, tail.err
    assert tail.out == []
    assert len(tail.err) == 2, tail.err  # the waiting note, then the error
    assert tail.err[1].startswith("hzreliable: Redis failed: "), tail.err


def _tail_losing_its_server(
    server: RedisServer, running: list[Running], *options: str
) -> Running:
    """A tail listening on 'live' (one message in) whose server just died
    and which has said so."""
    ok("publish", "live", "before", url=server.url)
    tail = Running("tail", "live", *options, url=server.url)
    running.append(tail)
    tail.stderr_with("listening on live from 1")
    server.kill()
    tail.stderr_with("listener read failed")
    return tail


@pytest.mark.redis
def test_a_listening_tail_retries_through_a_redis_restart(
    fresh_server: RedisServer, running: list[Running]
) -> None:
    url = fresh_server.url
    tail = _tail_losing_its_server(fresh_server, running, "--count", "1")
    assert tail.process.poll() is None  # a lost connection does not end it
    fresh_server.start()
    tail.stderr_with("listener read recovered")
    # The server keeps nothing across a restart, so the topic comes back
    # new: a tolerant tail starts at its first message.
    ok("publish", "live", "after", url=url)

    assert tail.finish() == 0, tail.err
    assert [line.split("  ")[::2] for line in tail.out] == [["0", '"after"']]
    assert any("was reset" in line for line in tail.err), tail.err
    assert not any("Traceback" in line for line in tail.err), tail.err


@pytest.mark.redis
def test_a_strict_tail_ends_with_exit_1_when_a_restart_reset_its_topic(
    fresh_server: RedisServer, running: list[Running]
) -> None:
    tail = _tail_losing_its_server(fresh_server, running, "--strict")
    fresh_server.start()

    assert tail.finish() == 1, tail.err
    assert tail.out == []
    assert tail.err[-1].startswith("hzreliable: tail ended:"), tail.err
    assert "reset" in tail.err[-1]
    assert not any("Traceback" in line for line in tail.err), tail.err


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "args",
    [["publish", "orders", "x"], ["tail", "orders"], ["info", "orders"]],
)
def test_an_unreachable_server_is_one_line_and_exit_2(args: list[str]) -> None:
    via_option = cli("--url", UNREACHABLE, *args)
    via_env = cli(*args, url=UNREACHABLE)
    option_after = cli(*args, "--url", UNREACHABLE, url="redis://127.0.0.1:2/0")

    for result in (via_option, via_env, option_after):
        line = assert_one_line_error(result, 2)
        assert "cannot reach Redis at redis://127.0.0.1:1/0" in line


def test_a_password_in_the_url_is_not_shown() -> None:
    result = cli("--url", "redis://user:s3cret@127.0.0.1:1/0", "info", "orders")

    assert "s3cret" not in assert_one_line_error(result, 2)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["publish", "bad name", "x"], "invalid topic name"),
        (["tail", "a*b"], "invalid topic name"),
        (["info", ""], "invalid topic name"),
        (["tail", "orders", "--from", "newest"], "--from"),
        (["tail", "orders", "--from", "-3"], "--from"),
        (["tail", "orders", "--count", "0"], "--count"),
        (["publish", "orders", "x", "--policy", "SOMETIMES"], "--policy"),
        (["frobnicate"], "invalid choice"),
        (["--url", "nope://x", "info", "orders"], "bad Redis URL"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    result = cli(*args, url=UNREACHABLE)

    assert expected in assert_one_line_error(result, 2)


# ------------------------------------------------------------ console script


SCRIPTS = Path(sys.executable).parent
"""Where the venv installed the ``hzreliable`` console script."""


@pytest.mark.redis
def test_the_installed_console_script_works(fresh_server: RedisServer) -> None:
    script = SCRIPTS / "hzreliable"
    assert script.exists(), f"{script} missing: pip install -e '.[dev]' first"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_command([str(script), *args], _env(fresh_server.url), timeout=60)

    published = run("publish", "orders", '{"n": 1}')
    run("publish", "orders", "second")
    info = run("info", "orders", "--json")
    missing = run("info", "ghost")
    tailed = run("tail", "orders", "--from", "oldest", "--count", "2", "--json")
    admin = fresh_server.client()
    connections = admin.info("stats")["total_connections_received"]
    demo = run("demo", "--embedded", "--json")
    connected = admin.info("stats")["total_connections_received"] - connections

    assert (published.returncode, published.stdout) == (0, "0\n"), published.stderr
    assert json.loads(info.stdout)["size"] == 2
    assert "does not exist" in assert_one_line_error(missing, 1)
    assert tailed.returncode == 0, tailed.stderr
    assert [
        (r["sequence"], r["message"])
        for r in map(json.loads, tailed.stdout.splitlines())
    ] == [(0, {"n": 1}), (1, "second")]
    assert demo.returncode == 0, demo.stderr
    summary = json.loads(demo.stdout)
    assert (summary["embedded"], summary["redis"]) == (True, None)
    assert summary["published"] == [0, 1, 2]
    # --embedded keeps the tour off the Redis that REDIS_URL names; the
    # tour deletes its topics, so only the server's counter can tell (a
    # server of the test's own, so no other client moves it).
    assert connected == 0


# ---------------------------------------------------------------- the docs

CLI_DOC = ROOT / "docs" / "cli.md"
CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```", re.DOTALL | re.MULTILINE)
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")
VARYING_KEYS = {"publish_time"}
"""JSON fields whose value differs from run to run: only the type must match."""


def console_examples(text: str) -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of the console blocks, with the lines it prints."""
    examples: list[tuple[str, list[str]]] = []
    for block in CONSOLE_BLOCK.findall(text):
        for line in block.splitlines():
            if line.startswith("$ "):
                examples.append((line[2:], []))
            else:
                examples[-1][1].append(line)
    return examples


def comparable(value: Any) -> Any:
    """``value`` with the type of every scalar beside it (0 and 0.0, 1 and
    True differ) and the varying fields reduced to their type."""
    if isinstance(value, dict):
        return {
            key: type(item).__name__ if key in VARYING_KEYS else comparable(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return (type(value).__name__, value)


def comparable_line(line: str) -> Any:
    if line.startswith("{"):
        return comparable(json.loads(line))
    return ISO_TIME.sub("<time>", line)


@pytest.mark.redis
def test_the_console_examples_in_the_docs_are_what_the_cli_prints(
    fresh_server: RedisServer, tmp_path: Path
) -> None:
    examples = console_examples(CLI_DOC.read_text())
    # Run as a reader would paste them: by a shell, on an empty server,
    # in order, with stderr in the same stream as stdout.
    env = _env(fresh_server.url)
    env["PATH"] = f"{SCRIPTS}{os.pathsep}{env.get('PATH', '')}"

    for command, documented in examples:
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
            check=False,
        )

        assert result.returncode == 0, (command, result.stdout)
        printed = result.stdout.splitlines()
        drift = f"{command!r}: docs/cli.md shows {documented}, the CLI {printed}"
        assert [comparable_line(line) for line in printed] == [
            comparable_line(line) for line in documented
        ], drift

    shown = {command.partition("hzreliable ")[2].split()[0] for command, _ in examples}
    assert shown >= {"publish", "tail", "info"}, shown


@pytest.mark.redis
def test_the_library_reads_what_the_cli_published(url: str) -> None:
    ok("publish", "shared", '{"from": "cli"}', "--capacity", "3", url=url)

    with ReliableTopicClient(url=url) as client:
        topic = client.get_reliable_topic("shared", ReliableTopicConfig(capacity=3))
        assert topic.ringbuffer.read_one(0).message == {"from": "cli"}
