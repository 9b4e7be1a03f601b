"""
The Sphinx documentation builds with warnings as errors, and every Python
example in it runs as written (on fakeredis instead of a Redis server).

Each example is a ``python`` code block of a page in ``docs/`` (README.md's
are run by test_readme.py). It must stand alone and end with an ``assert``
stating what it shows; shell commands go in ``sh`` blocks, which are not run.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from hzreliable import ReliableTopicConfig

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"

RST_BLOCK = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode)::\s*(\S+)\s*$")
MD_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*(?:\{code-block\}\s*)?(\S*)")
OPTION = re.compile(r"^\s*:[\w-]+:")
PYTHON = {"python", "py", "python3"}


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    source: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    return sorted(
        path
        for pattern in ("*.rst", "*.md")
        for path in DOCS.rglob(pattern)
        if "_build" not in path.relative_to(DOCS).parts
    )


def rst_examples(page: str, lines: list[str]) -> list[Example]:
    examples = []
    for number, line in enumerate(lines):
        match = RST_BLOCK.match(line)
        if match is None or match.group(2) not in PYTHON:
            continue
        indent = len(match.group(1))
        body: list[str] = []
        for following in lines[number + 1 :]:
            stripped = following.strip()
            if stripped and len(following) - len(following.lstrip()) <= indent:
                break
            if not body and OPTION.match(stripped):
                continue  # a directive option such as :caption:
            body.append(following)
        source = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
        examples.append(Example(page, number + 2, source))
    return examples


def markdown_examples(page: str, lines: list[str]) -> list[Example]:
    examples = []
    fence: str | None = None
    body: list[str] = []
    start = 0
    for number, line in enumerate(lines):
        if fence is None:
            match = MD_FENCE.match(line)
            if match is not None and match.group(3) in PYTHON:
                fence, body, start = match.group(2), [], number + 2
            elif match is not None:
                fence, start = match.group(2), -1  # another language: skip
        elif line.strip() == fence:
            if start > 0:
                source = textwrap.dedent("\n".join(body)) + "\n"
                examples.append(Example(page, start, source))
            fence = None
        elif body or not OPTION.match(line):
            body.append(line)  # (leading options of {code-block} are skipped)
    return examples


def examples() -> list[Example]:
    found = []
    for path in pages():
        page = str(path.relative_to(ROOT))
        lines = path.read_text(encoding="utf-8").splitlines()
        if path.suffix == ".rst":
            found += rst_examples(page, lines)
        else:
            found += markdown_examples(page, lines)
    return found


def use_fakeredis(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """
    Make every way an example may open Redis return a client of one fresh
    fakeredis server; return the list of the clients made.
    """
    server = fakeredis.FakeServer()
    made: list[object] = []

    class SyncRedis(fakeredis.FakeRedis):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(server=server)
            made.append(self)

        @classmethod
        def from_url(cls, url: str, **kwargs: Any) -> SyncRedis:
            return cls()

    class AsyncRedis(fakeredis.FakeAsyncRedis):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(server=server)
            made.append(self)

        @classmethod
        def from_url(cls, url: str, **kwargs: Any) -> AsyncRedis:  # type: ignore[override]
            return cls()

    # hzreliable holds the classes themselves, so patch their from_url too.
    monkeypatch.setattr(redis.Redis, "from_url", SyncRedis.from_url)
    monkeypatch.setattr(redis.asyncio.Redis, "from_url", AsyncRedis.from_url)
    # What an example builds itself, a cluster client included (it becomes
    # the one fakeredis server, which holds every slot).
    for module in (redis, redis.cluster):
        monkeypatch.setattr(module, "Redis", SyncRedis, raising=False)
        monkeypatch.setattr(module, "RedisCluster", SyncRedis)
    for module in (redis.asyncio, redis.asyncio.cluster):
        monkeypatch.setattr(module, "Redis", AsyncRedis, raising=False)
        monkeypatch.setattr(module, "RedisCluster", AsyncRedis)
    return made


def listener_threads() -> set[threading.Thread]:
    return {
        thread
        for thread in threading.enumerate()
        if thread.name.startswith("hzreliable-listener")
    }


EXAMPLES = examples()


def test_the_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 8
    assert {example.page for example in EXAMPLES} >= {
        "docs/index.rst",
        "docs/reliable-topic.rst",
        "docs/asyncio.rst",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_docs_example_runs(example: Example, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = ast.parse(example.source, str(example))
    assert any(isinstance(node, ast.Assert) for node in ast.walk(tree)), (
        f"{example}: end the example with an assert stating what it shows"
    )
    made = use_fakeredis(monkeypatch)
    before = listener_threads()

    exec(compile(tree, str(example), "exec"), {"__name__": "docs_example"})

    # It ran to the end, so its own asserts held. It talked to Redis, and
    # left no listener running behind it.
    assert made, f"{example}: never opened a Redis connection"
    deadline = time.monotonic() + 5
    while listener_threads() - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not listener_threads() - before, f"{example}: a listener still runs"


def api_sections() -> dict[str, str]:
    """The API reference's text under each module's heading."""
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    parts = re.split(r"^(hzreliable[\w.]*)\n-+\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize(
    "module", ["hzreliable", "hzreliable.asyncio", "hzreliable.proxy.reliable_topic"]
)
def test_the_api_reference_lists_every_public_name(module: str) -> None:
    section = api_sections()[module]
    documented = set(re.findall(r"^\.\. auto(?!module)\w+:: (\w+)$", section, re.M))
    linked = set(re.findall(r"`~hzreliable\.(\w+)`", section))

    exported = set(importlib.import_module(module).__all__)

    if module == "hzreliable":
        assert exported == documented
    else:
        assert exported == documented | linked
        assert not documented & linked


def test_the_configuration_table_covers_every_field() -> None:
    text = (DOCS / "reliable-topic.rst").read_text(encoding="utf-8")
    section = text.split("\nConfiguration options\n", 1)[1]
    table = section.split(".. list-table::", 1)[1].split("\n\n.. ", 1)[0]

    rows = re.findall(r"^   \* - ``(\w+)``", table, flags=re.M)

    assert rows == list(ReliableTopicConfig.model_fields)


def test_the_readme_configuration_table_covers_every_field() -> None:
    section = readme_section("The ring, retention and overload")
    section = section.strip().split("\n\n", 1)[0]  # the first table only
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, flags=re.M)

    assert [name for name, _ in rows] == list(ReliableTopicConfig.model_fields)


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_acl_rule_is_the_readmes() -> None:
    readme = re.search(r"^ACL SETUSER .*$", readme_section("Security"), re.M)
    docs = re.search(
        r"^\s*redis-cli (ACL SETUSER .*)$",
        (DOCS / "guarantees.rst").read_text(encoding="utf-8"),
        re.M,
    )
    assert readme is not None
    assert docs is not None

    unquoted = re.sub(r"['\\]", "", docs.group(1))

    assert unquoted.split() == readme.group(0).split()


def test_the_benchmark_figures_are_the_readmes() -> None:
    figures = re.compile(r"(?<![\d.])\d\.\d\d(?![\d.])")  # not versions
    performance = (DOCS / "performance.rst").read_text(encoding="utf-8")
    performance = performance.split(".. list-table:: Ratios", 1)[1]

    # The README quotes the first column of the page's ratio table.
    quoted = figures.findall(readme_section("Benchmark"))
    assert quoted
    assert figures.findall(performance)[: 3 * len(quoted) : 3] == quoted


def test_docs_build(tmp_path: Path) -> None:
    """What CI runs: the HTML build, with warnings as errors."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "html" / "api.html").is_file()
