"""Listeners and the messages they receive."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "FROM_LATEST",
    "FROM_OLDEST",
    "ReliableMessageListener",
    "TopicMessage",
]

T = TypeVar("T")

FROM_OLDEST = -1
"""Initial sequence meaning: start at the oldest message still retained."""

FROM_LATEST = -2
"""Initial sequence meaning: only messages published after add_listener."""


@dataclass(frozen=True, slots=True)
class TopicMessage(Generic[T]):
    """One delivered message."""

    name: str
    """The topic's name."""
    message: T
    """The decoded message."""
    sequence: int
    """Its position in the topic; contiguous from 0."""
    publish_time: float
    """When Redis stored it, in seconds since the epoch (Redis's clock)."""


class ReliableMessageListener(Generic[T]):
    """
    Receives a topic's messages in order, one at a time.

    Override :meth:`on_message`; every other method has a working default:
    start with messages published after registration, remember nothing,
    end on a gap (not loss tolerant), and log errors without ending. With
    :mod:`hzreliable.asyncio` any method may be ``async def``; the threaded
    API needs plain methods.
    """

    def on_message(self, message: TopicMessage[T]) -> Awaitable[None] | None:
        """Handle one message. Called in sequence order, never concurrently."""
        raise NotImplementedError("override on_message")

    def retrieve_initial_sequence(self) -> int | Awaitable[int]:
        """
        Where to start; called once, by ``add_listener``.

        Return :data:`FROM_OLDEST` (-1) for the oldest retained message,
        :data:`FROM_LATEST` (-2) for only new messages, or a sequence
        ``n >= 0``. To resume after the last message handled, return the
        sequence last passed to :meth:`store_sequence` plus one.
        """
        return FROM_LATEST

    def store_sequence(self, sequence: int) -> Awaitable[None] | None:
        """Called with each message's sequence just before :meth:`on_message`."""

    def is_loss_tolerant(self) -> bool | Awaitable[bool]:
        """True to skip ahead when messages were lost; False to end."""
        return False

    def is_terminal(self, error: BaseException) -> bool | Awaitable[bool]:
        """True if ``error`` (raised by on_message, store_sequence or while
        decoding) should end this listener; False logs it and goes on."""
        return False

    def on_cancel(self) -> Awaitable[None] | None:
        """Called once when the listener ends, for whatever reason."""


class _CallableListener(ReliableMessageListener[Any]):
    """A plain function as a listener: new messages only, like Hazelcast's
    adapter for an ordinary message listener."""

    def __init__(self, function: Callable[[TopicMessage[Any]], Any]) -> None:
        self.function = function

    def on_message(self, message: TopicMessage[Any]) -> Any:
        return self.function(message)

    def __repr__(self) -> str:
        return f"<listener {self.function!r}>"


def as_listener(listener: object) -> ReliableMessageListener[Any]:
    """Accept a ReliableMessageListener or a callable; refuse anything else."""
    if isinstance(listener, ReliableMessageListener):
        if type(listener).on_message is ReliableMessageListener.on_message:
            raise TypeError(f"{type(listener).__name__} does not override on_message")
        return listener
    if callable(listener):
        return _CallableListener(listener)
    raise TypeError(
        "listener must be a ReliableMessageListener or a callable taking a "
        f"TopicMessage, not {type(listener).__name__}"
    )


def check_initial_sequence(value: object) -> int:
    """Validate what retrieve_initial_sequence returned."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            "retrieve_initial_sequence() must return an int, "
            f"not {type(value).__name__}"
        )
    if value < FROM_LATEST:
        raise ValueError(
            f"retrieve_initial_sequence() returned {value}; use a sequence "
            ">= 0, FROM_OLDEST (-1) or FROM_LATEST (-2)"
        )
    return value


def check_threaded(listener: ReliableMessageListener[Any]) -> None:
    """The threaded API cannot await: refuse coroutine methods up front."""
    target = listener
    if isinstance(listener, _CallableListener):
        target = listener.function  # type: ignore[assignment]
        coroutines = [inspect.iscoroutinefunction(target)]
    else:
        coroutines = [
            inspect.iscoroutinefunction(getattr(listener, name))
            for name in (
                "on_message",
                "retrieve_initial_sequence",
                "store_sequence",
                "is_loss_tolerant",
                "is_terminal",
                "on_cancel",
            )
        ]
    if any(coroutines):
        raise TypeError(
            "the threaded API cannot await async listener methods; use "
            "hzreliable.asyncio, or plain methods"
        )
