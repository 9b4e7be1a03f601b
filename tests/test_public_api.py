"""The public surface: names, aliases and the spec's import paths."""

from __future__ import annotations

import types

import hzreliable
import hzreliable.asyncio as hz_async
import hzreliable.proxy.reliable_topic as spec_path


def test_all_is_complete_and_sorted() -> None:
    public = {
        name
        for name in dir(hzreliable)
        if not name.startswith("_")
        and not isinstance(getattr(hzreliable, name), types.ModuleType)
    }

    # Constants first, then the rest, each alphabetically (isort style).
    assert hzreliable.__all__ == sorted(
        hzreliable.__all__, key=lambda name: (not name.isupper(), name)
    )
    assert set(hzreliable.__all__) == public


def test_hazelcast_names_are_aliases() -> None:
    assert hzreliable.HazelcastClient is hzreliable.ReliableTopicClient
    assert hzreliable.ReliableTopic is hzreliable.ReliableTopicProxy
    assert hzreliable.TopicOverloadError is hzreliable.TopicOverloadException
    assert hzreliable.StaleSequenceError is hzreliable.StaleSequenceException


def test_spec_import_path_reexports_the_same_objects() -> None:
    for name in (
        "ReliableTopicProxy",
        "ReliableMessageListener",
        "ReliableTopicConfig",
        "StaleSequenceException",
        "TopicOverloadException",
        "TopicOverloadPolicy",
    ):
        assert getattr(spec_path, name) is getattr(hzreliable, name)


def test_errors_share_one_root() -> None:
    for name in (
        "TopicOverloadException",
        "StaleSequenceException",
        "TopicResetException",
        "TopicConfigConflictError",
        "MessageDecodeError",
        "ForeignEntryError",
    ):
        assert issubclass(getattr(hzreliable, name), hzreliable.HzReliableError)


def test_asyncio_all_is_complete_and_sorted() -> None:
    public = {
        name
        for name in dir(hz_async)
        if not name.startswith("_")
        and not isinstance(getattr(hz_async, name), types.ModuleType)
    }

    assert hz_async.__all__ == sorted(
        hz_async.__all__, key=lambda name: (not name.isupper(), name)
    )
    assert set(hz_async.__all__) == public


def test_the_asyncio_api_shares_the_threaded_api_types() -> None:
    for name in ("ReliableMessageListener", "ReliableTopicConfig", "TopicMessage"):
        assert getattr(hz_async, name) is getattr(hzreliable, name)
