"""ReliableTopicConfig: defaults, validation, immutability."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from hzreliable import ReliableTopicConfig, TopicOverloadPolicy


def test_defaults_match_the_spec() -> None:
    config = ReliableTopicConfig()

    assert config.read_batch_size == 10
    assert config.overload_policy is TopicOverloadPolicy.BLOCK
    assert config.statistics_enabled is True
    assert config.capacity == 10_000
    assert config.time_to_live == 0


@pytest.mark.parametrize("name", ["DISCARD_OLDEST", "discard_newest", "Block", "ERROR"])
def test_policy_is_accepted_by_name(name: str) -> None:
    config = ReliableTopicConfig(overload_policy=name)  # type: ignore[arg-type]

    assert config.overload_policy is TopicOverloadPolicy(name.upper())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("read_batch_size", 0),
        ("read_batch_size", 2.5),
        ("read_batch_size", True),
        ("capacity", 0),
        ("capacity", -5),
        ("capacity", "many"),
        ("time_to_live", -1),
        ("time_to_live", float("inf")),
        ("time_to_live", float("nan")),
        ("overload_policy", "DROP_EVERYTHING"),
        ("statistics_enabled", "perhaps"),
        ("max_message_bytes", 0),
        ("no_such_option", 1),
    ],
)
def test_invalid_values_raise_a_value_error_naming_the_field(
    field: str, value: Any
) -> None:
    with pytest.raises(ValueError, match=field):
        ReliableTopicConfig(**{field: value})


def test_read_batch_larger_than_capacity_is_refused() -> None:
    with pytest.raises(ValueError, match="read_batch_size"):
        ReliableTopicConfig(capacity=5, read_batch_size=10)


def test_config_is_immutable() -> None:
    config = ReliableTopicConfig()

    with pytest.raises(pydantic.ValidationError):
        config.capacity = 5


def test_fractional_time_to_live_is_kept_in_microseconds() -> None:
    assert ReliableTopicConfig(time_to_live=0.25).ttl_us == 250_000


def test_the_default_batch_shrinks_to_a_small_ring() -> None:
    assert ReliableTopicConfig(capacity=3).read_batch_size == 3
