"""Codecs: JSON by default, pickle only when asked for."""

from __future__ import annotations

import pickle
from datetime import date
from typing import Any

import pytest
import redis

from hzreliable import (
    FROM_OLDEST,
    ForeignEntryError,
    MessageDecodeError,
    PickleCodec,
    ReliableTopicClient,
)
from hzreliable._protocol import TopicKeys

from .conftest import eventually
from .helpers import Recorder


def test_the_default_codec_never_unpickles(
    client: ReliableTopicClient, backend: redis.Redis
) -> None:
    topic = client.get_reliable_topic("no-pickle")
    payload = pickle.dumps(date(2026, 1, 1))
    backend.xadd(TopicKeys.of("no-pickle").stream, {"c": "p", "d": payload}, id="0-*")
    errors: list[BaseException] = []

    class Collect(Recorder):
        def is_terminal(self, error: BaseException) -> bool:
            errors.append(error)
            return True

    recorder = Collect(FROM_OLDEST)
    topic.add_listener(recorder)

    eventually(lambda: recorder.cancelled == 1)
    assert isinstance(errors[0], MessageDecodeError)
    assert "unknown codec tag" in str(errors[0])
    with pytest.raises(MessageDecodeError):
        topic.ringbuffer.read_one(0)


def test_the_pickle_codec_is_opt_in_and_round_trips(backend: redis.Redis) -> None:
    with ReliableTopicClient(backend, codec=PickleCodec()) as client:
        topic = client.get_reliable_topic("pickled")
        sent: list[Any] = [date(2026, 1, 1), {"still": "json"}, b"raw"]

        sequences = topic.publish_all(sent)

        got = [topic.ringbuffer.read_one(s).message for s in sequences]
        assert got == sent
        stream = TopicKeys.of("pickled").stream
        entries: Any = backend.xrange(stream)
        tags = [fields[b"c"] for _, fields in entries]
        assert tags == [b"p", b"j", b"b"]


def test_an_entry_with_a_foreign_id_is_reported_as_such(
    client: ReliableTopicClient, backend: redis.Redis
) -> None:
    # XADD * gives an ID of the form <milliseconds>-<n>, which carries no
    # sequence and makes Redis refuse every later XADD 0-*.
    topic = client.get_reliable_topic("foreign")
    topic.publish("mine")
    recorder = Recorder(FROM_OLDEST)
    registration = topic.add_listener(recorder)
    eventually(lambda: recorder.received == ["mine"])
    stream = TopicKeys.of("foreign").stream
    added = backend.xadd(stream, {"d": "theirs"})
    foreign_id = added.decode() if isinstance(added, bytes) else added

    eventually(lambda: recorder.cancelled == 1)
    error = topic.listener_error(registration)
    assert isinstance(error, ForeignEntryError)
    assert f"topic 'foreign': stream entry {foreign_id}" in str(error)
    with pytest.raises(ForeignEntryError, match=f"'foreign'.*{foreign_id}.*XDEL"):
        topic.publish("refused")
    with pytest.raises(ForeignEntryError, match=foreign_id):
        topic.ringbuffer.size()
    assert backend.xlen(stream) == 2  # nothing stored by the refused publish

    topic.destroy()
    again = client.get_reliable_topic("foreign")
    assert again.publish("again") == 0
