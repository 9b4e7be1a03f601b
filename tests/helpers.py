"""Test helpers: a listener that records what happens to it, and more."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hzreliable import FROM_LATEST, ReliableMessageListener, TopicMessage

ROOT = Path(__file__).resolve().parent.parent
"""The repository's top folder."""


def run_command(
    command: list[str],
    env: dict[str, str],
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` from the repository's top folder and return what it
    printed, as text, whatever its exit code."""
    return subprocess.run(
        command,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def worker_name() -> str:
    """The asyncio task running this code, or else its thread."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task.get_name() if task is not None else threading.current_thread().name


class Recorder(ReliableMessageListener[Any]):
    """Records every call; optionally fails on chosen sequences."""

    def __init__(
        self,
        initial: int = FROM_LATEST,
        *,
        tolerant: bool = False,
        fail_on: set[int] | None = None,
        terminal: bool | type[BaseException] = False,
    ) -> None:
        self.initial = initial
        self.tolerant = tolerant
        self.fail_on = fail_on or set()
        self.terminal = terminal
        self.calls: list[tuple[str, int]] = []
        self.messages: list[TopicMessage[Any]] = []
        self.cancelled = 0
        self.initial_calls = 0
        self.active = 0
        self.overlapped = False
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    @property
    def received(self) -> list[Any]:
        return [m.message for m in self.messages]

    @property
    def sequences(self) -> list[int]:
        return [m.sequence for m in self.messages]

    def retrieve_initial_sequence(self) -> int:
        self.initial_calls += 1
        return self.initial

    def store_sequence(self, sequence: int) -> None:
        self.calls.append(("store", sequence))

    def on_message(self, message: TopicMessage[Any]) -> None:
        with self.lock:
            self.active += 1
            self.overlapped |= self.active > 1
        try:
            self.threads.add(worker_name())
            self.calls.append(("message", message.sequence))
            if message.sequence in self.fail_on:
                raise RuntimeError(f"failing on {message.sequence}")
            self.messages.append(message)
        finally:
            with self.lock:
                self.active -= 1

    def is_loss_tolerant(self) -> bool:
        return self.tolerant

    def is_terminal(self, error: BaseException) -> bool:
        if isinstance(self.terminal, bool):
            return self.terminal
        if self.terminal is ZeroDivisionError:
            raise ZeroDivisionError("is_terminal itself fails")
        return isinstance(error, self.terminal)

    def on_cancel(self) -> None:
        self.cancelled += 1


def in_event_loop() -> bool:
    """True inside the asyncio API's event loop (listener code runs there)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def then(wait: threading.Event, action: Callable[[], None]) -> Any:
    """
    Wait for ``wait``, then run ``action``: blocking in a listener thread;
    in the event loop, as a coroutine the asyncio API awaits (blocking there
    would stop the whole loop, publishers included).
    """
    if not in_event_loop():
        wait.wait(10)
        action()
        return None

    async def later() -> None:
        await asyncio.to_thread(wait.wait, 10)
        action()

    return later()


def watch_fetches(topic: Any, seen: Callable[[int, Any], None]) -> None:
    """Call ``seen(sequence, batch)`` after each Redis read of the topic's
    shared reader, whichever API it belongs to."""
    reader = topic._reader
    original = reader._fetch
    if inspect.iscoroutinefunction(original):

        async def fetch_async(sequence: int, count: int) -> Any:
            batch = await original(sequence, count)
            seen(sequence, batch)
            return batch

        reader._fetch = fetch_async
        return

    def fetch(sequence: int, count: int) -> Any:
        batch = original(sequence, count)
        seen(sequence, batch)
        return batch

    reader._fetch = fetch


def live_workers(client: Any) -> set[str]:
    """Names of the listener threads (or asyncio tasks) still running."""
    loop = getattr(client, "_runner", None)
    if loop is None:
        return {t.name for t in threading.enumerate() if "hzreliable" in t.name}

    async def tasks() -> set[str]:
        names = {t.get_name() for t in asyncio.all_tasks() if not t.done()}
        return {name for name in names if "hzreliable" in name}

    found: set[str] = loop.run(tasks())
    return found
