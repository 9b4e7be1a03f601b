"""
Errors raised by hzreliable.

Every error the library defines derives from one root::

    HzReliableError
     ├── TopicOverloadException      the ring is full and the policy refuses
     ├── StaleSequenceException      a listener's next message is gone
     │    └── TopicResetException    the topic was recreated underneath
     ├── TopicConfigConflictError    ring settings differ from the stored ones
     ├── ReplicationAckError         too few replicas confirmed a publish
     └── MessageDecodeError          an entry could not be decoded

Misuse raises built-in errors instead: ``TypeError`` for an object of the
wrong kind, ``ValueError`` for a bad value, ``RuntimeError`` for a call on a
client that was shut down. Connection problems surface as redis-py's own
``redis.exceptions.ConnectionError`` and ``TimeoutError``.
"""

from __future__ import annotations


class HzReliableError(Exception):
    """Root of every error defined by hzreliable."""


class TopicOverloadException(HzReliableError):
    """The ring is full and the overload policy (ERROR, or BLOCK past its
    timeout) refused the message; nothing was stored."""

    def __init__(self, topic: str, message: str) -> None:
        super().__init__(message)
        self.topic = topic


class StaleSequenceException(HzReliableError):
    """A listener's next sequence is no longer (or not yet) in the ring."""

    def __init__(
        self,
        topic: str,
        sequence: int,
        head: int,
        lost: int,
        message: str | None = None,
    ) -> None:
        super().__init__(
            message
            or f"topic {topic!r}: sequence {sequence} is stale, the oldest "
            f"retained message is {head} ({lost} lost)"
        )
        self.topic = topic
        self.sequence = sequence
        self.head = head
        self.lost = lost


class TopicResetException(StaleSequenceException):
    """The topic was recreated (destroyed, flushed or lost by Redis) while a
    listener was reading it; its sequences started again."""


class TopicConfigConflictError(HzReliableError, ValueError):
    """The topic exists in Redis with other ring settings than requested."""

    def __init__(
        self,
        topic: str,
        stored: tuple[int, float],
        requested: tuple[int, float],
    ) -> None:
        super().__init__(
            f"topic {topic!r} exists with capacity={stored[0]} and "
            f"time_to_live={stored[1]}, not capacity={requested[0]} and "
            f"time_to_live={requested[1]}; use the stored settings or "
            f"destroy() the topic first"
        )
        self.topic = topic
        self.stored = stored
        self.requested = requested


class ReplicationAckError(HzReliableError):
    """A publish was stored on the primary, but fewer replicas than
    ``replicas_to_ack`` confirmed it within ``replica_ack_timeout``. The
    message is not lost yet; it could be on a failover to a lagging replica.
    """

    def __init__(
        self, topic: str, sequences: list[int], acked: int, wanted: int
    ) -> None:
        super().__init__(
            f"topic {topic!r}: sequences {sequences[0]}..{sequences[-1]} reached "
            f"{acked} of {wanted} replicas in time"
        )
        self.topic = topic
        self.sequences = sequences
        self.acked = acked
        self.wanted = wanted


class MessageDecodeError(HzReliableError, ValueError):
    """A stream entry could not be turned into a message (written by another
    tool, or by a publisher with another codec)."""

    def __init__(self, topic: str, sequence: int, reason: str) -> None:
        super().__init__(f"topic {topic!r}: cannot decode message {sequence}: {reason}")
        self.topic = topic
        self.sequence = sequence


class ForeignEntryError(HzReliableError):
    """The topic's stream holds an entry whose ID is not of the form
    ``0-N`` (added by another tool with ``XADD *``, say). No sequence can be
    read from it, and Redis refuses every publish after it, so the topic is
    unusable until the entry is deleted (``XDEL``) and the stream's last ID
    set back to the newest ``0-N`` (``XSETID``), or the topic destroyed."""

    def __init__(self, entry_id: str, topic: str | None = None) -> None:
        where = f"topic {topic!r}: " if topic is not None else ""
        super().__init__(
            f"{where}stream entry {entry_id} was not written by hzreliable "
            "(IDs must be 0-N, N the sequence + 1); XDEL it and XSETID the "
            "stream back to its newest 0-N ID, or destroy() the topic"
        )
        self.entry_id = entry_id
        self.topic = topic


TopicOverloadError = TopicOverloadException
StaleSequenceError = StaleSequenceException
