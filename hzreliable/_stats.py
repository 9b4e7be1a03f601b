"""Statistics objects, shared by the sync and asyncio APIs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ListenerStats:
    """One registration, as seen by ``get_local_topic_stats``."""

    next_sequence: int
    """The sequence this listener will receive next."""
    lag: int
    """Messages published but not yet delivered to it."""
    lost_count: int
    """Messages it skipped because they were trimmed or expired."""
    reset_count: int
    """Times it followed the topic through a reset."""


@dataclass(frozen=True, slots=True)
class LocalTopicStats:
    """What this client did with one topic (zeros when statistics are off)."""

    creation_time: float
    """When this client opened the topic, in seconds since the epoch."""
    publish_operation_count: int
    """Messages this client stored in the topic."""
    receive_operation_count: int
    """Messages delivered to this client's listeners."""
    listeners: dict[str, ListenerStats] = field(default_factory=dict)
    """Per registration id, the listeners still registered."""
