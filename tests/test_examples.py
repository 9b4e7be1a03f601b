"""The spec's four examples and the demo, run as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .helpers import ROOT, run_command

SPEC = ROOT / "examples" / "spec"


def python(
    *args: str, server: Any = None, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **extra_env)
    if server is not None:
        env["REDIS_URL"] = server.url
    return run_command([sys.executable, *args], env)


def run(server: Any, *args: str) -> str:
    result = python(*args, server=server)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.redis
@pytest.mark.parametrize(
    ("example", "expected"),
    [
        ("basic_messaging.py", ["Received: Event 1", "Sequence: 1"]),
        # No time_to_live: BLOCK never waits and the newest 10,000 are kept.
        ("backpressure.py", ["TAIL 9999 SIZE 10000"]),
        ("event_sourcing.py", ["'status': 'shipped'", "'tracking': 'TRACK-789'"]),
    ],
)
def test_spec_example_runs(
    redis_server: Any, example: str, expected: list[str]
) -> None:
    redis_server.client().flushdb()

    out = run(redis_server, str(SPEC / example))

    for text in expected:
        assert text in out


@pytest.mark.redis
def test_resumable_subscription_example_resumes(
    redis_server: Any, tmp_path: Path
) -> None:
    redis_server.client().flushdb()
    state = str(tmp_path / "state.json")

    first = run(redis_server, str(SPEC / "resumable_subscription.py"), state, "one")
    second = run(redis_server, str(SPEC / "resumable_subscription.py"), state, "two")

    processed = [
        json.loads(line.split(" ", 1)[1])
        for line in (first + second).splitlines()
        if line.startswith("PROCESSED")
    ]
    assert processed[0] == ["one-0", "one-1", "one-2"]
    # The spec's listener stores the sequence it processed and resumes *at*
    # it, so the last message of the first run is delivered once more.
    assert processed[1] == ["one-2", "two-0", "two-1", "two-2"]


@pytest.mark.redis
def test_demo_runs_on_redis_url(redis_server: Any) -> None:
    out = run(redis_server, "-m", "hzreliable", "demo")

    assert f"Using Redis at {redis_server.url}" in out
    assert "Done." in out
    assert redis_server.client().keys("hzreliable:{demo-*") == []


def test_demo_runs_on_embedded_fakeredis() -> None:
    result = python("-m", "hzreliable", "demo", "--embedded")

    assert result.returncode == 0, result.stderr
    assert "embedded fakeredis" in result.stdout
    assert "raised TopicOverloadException" in result.stdout


def test_demo_reports_an_unreachable_server_in_one_line() -> None:
    result = python("-m", "hzreliable", "--url", "redis://127.0.0.1:1/0", "demo")

    assert result.returncode == 2
    assert result.stderr.startswith("hzreliable:")
    assert "Traceback" not in result.stderr


def test_demo_json_summarises_the_tour_on_fakeredis() -> None:
    result = python("-m", "hzreliable", "demo", "--embedded", "--json")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["embedded"] is True
    assert summary["redis"] is None
    assert summary["published"] == [0, 1, 2]
    assert summary["replayed"] == [0, 1, 2, 3]
    assert summary["resumed"] == [summary["resumed_at"]]
    outcomes = {o["policy"]: o for o in summary["overload"]}
    assert outcomes["ERROR"]["error"] == "TopicOverloadException"
    assert outcomes["DISCARD_NEWEST"]["sequence"] is None
    assert outcomes["DISCARD_NEWEST"]["kept"] == ["a", "b"]
    assert outcomes["DISCARD_OLDEST"]["kept"] == ["b", "c"]
    assert outcomes["BLOCK"]["sequence"] == 2
    assert outcomes["BLOCK"]["waited"] > 0


def test_demo_falls_back_to_fakeredis_when_redis_url_does_not_answer() -> None:
    result = python("-m", "hzreliable", "demo", REDIS_URL="redis://127.0.0.1:1/0")

    assert result.returncode == 0, result.stderr
    assert "No Redis answered at redis://127.0.0.1:1/0" in result.stdout
    assert "embedded fakeredis" in result.stdout
