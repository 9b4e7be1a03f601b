"""A listener that records what happens to it."""

from __future__ import annotations

import threading
from typing import Any

from hzreliable import FROM_LATEST, ReliableMessageListener, TopicMessage


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
            self.threads.add(threading.current_thread().name)
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
