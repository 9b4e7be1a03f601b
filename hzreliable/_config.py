"""Topic configuration and overload policies."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class TopicOverloadPolicy(str, enum.Enum):
    """
    What ``publish`` does when the ring is full.

    The ring is full when it holds ``capacity`` messages none of which has
    outlived ``time_to_live``. With ``time_to_live = 0`` nothing promises to
    keep a message, so the ring is never full and every policy overwrites the
    oldest message.
    """

    DISCARD_OLDEST = "DISCARD_OLDEST"
    """Overwrite the oldest message, even one still within its retention."""

    DISCARD_NEWEST = "DISCARD_NEWEST"
    """Drop the incoming message; ``publish`` returns ``None`` and
    ``publish_all`` returns ``[]``."""

    BLOCK = "BLOCK"
    """Wait until the oldest message's retention period ends, then store."""

    ERROR = "ERROR"
    """Raise :class:`TopicOverloadException`; nothing is stored."""


DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024


class ReliableTopicConfig(BaseModel):
    """
    Settings of one reliable topic; immutable and validated.

    ``capacity`` and ``time_to_live`` describe the ring and are stored with
    the topic in Redis, so every client sees the same ring. The other fields
    are this client's own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    read_batch_size: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Messages a listener reads from Redis per round trip.",
    )
    overload_policy: TopicOverloadPolicy = Field(
        default=TopicOverloadPolicy.BLOCK,
        description="What publish does when the ring is full "
        "(a TopicOverloadPolicy or its name).",
    )
    statistics_enabled: bool = Field(
        default=True,
        description="Count publishes and deliveries for get_local_topic_stats().",
    )
    capacity: int = Field(
        default=10_000,
        ge=1,
        le=100_000_000,
        description="Most messages the ring keeps; older ones are trimmed.",
    )
    time_to_live: float = Field(
        default=0,
        ge=0,
        le=10 * 365 * 24 * 3600,
        allow_inf_nan=False,
        description="Seconds a message is kept at least (0 = no retention "
        "period: the ring is never full and always overwrites the oldest).",
    )
    max_message_bytes: int = Field(
        default=DEFAULT_MAX_MESSAGE_BYTES,
        ge=1,
        le=512 * 1024 * 1024,
        description="Largest encoded message publish accepts, in bytes.",
    )

    replicas_to_ack: int = Field(
        default=0,
        ge=0,
        le=100,
        description="After each publish, wait (Redis WAIT) until this many "
        "replicas have the message; 0 = do not wait.",
    )
    replica_ack_timeout: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds to wait for replicas_to_ack before "
        "ReplicationAckError is raised.",
    )

    @field_validator("overload_policy", mode="before")
    @classmethod
    def _policy_by_name(cls, value: Any) -> Any:
        if isinstance(value, str) and not isinstance(value, TopicOverloadPolicy):
            return value.upper()
        return value

    @field_validator(
        "read_batch_size",
        "capacity",
        "max_message_bytes",
        "replicas_to_ack",
        mode="before",
    )
    @classmethod
    def _no_bool_or_float(cls, value: Any) -> Any:
        if isinstance(value, (bool, float)):
            raise ValueError("must be a whole number")
        return value

    @model_validator(mode="after")
    def _batch_fits_ring(self) -> ReliableTopicConfig:
        if "read_batch_size" not in self.model_fields_set:
            # The default batch shrinks with a small ring instead of failing.
            object.__setattr__(
                self, "read_batch_size", min(self.read_batch_size, self.capacity)
            )
        elif self.read_batch_size > self.capacity:
            raise ValueError(
                f"read_batch_size ({self.read_batch_size}) must not exceed "
                f"capacity ({self.capacity})"
            )
        return self

    @property
    def ttl_us(self) -> int:
        """The retention period in whole microseconds, as stored in Redis."""
        return round(self.time_to_live * 1_000_000)
