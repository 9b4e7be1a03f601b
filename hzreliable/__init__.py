"""
hzreliable: Hazelcast's ReliableTopic on Redis Streams.

Ordered publish/subscribe with replay, durable resume from a stored
sequence, loss-tolerant or terminating listeners, and a bounded ring of
messages with overload policies.
"""

from ._client import DEFAULT_URL, HazelcastClient, ReliableTopicClient
from ._codec import Codec, JsonCodec, PickleCodec
from ._config import ReliableTopicConfig, TopicOverloadPolicy
from ._errors import (
    ForeignEntryError,
    HzReliableError,
    MessageDecodeError,
    ReplicationAckError,
    StaleSequenceError,
    StaleSequenceException,
    TopicConfigConflictError,
    TopicOverloadError,
    TopicOverloadException,
    TopicResetException,
)
from ._listener import FROM_LATEST, FROM_OLDEST, ReliableMessageListener, TopicMessage
from ._stats import ListenerStats, LocalTopicStats
from ._topic import ReliableTopicProxy, RingbufferView

ReliableTopic = ReliableTopicProxy

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "FROM_LATEST",
    "FROM_OLDEST",
    "Codec",
    "ForeignEntryError",
    "HazelcastClient",
    "HzReliableError",
    "JsonCodec",
    "ListenerStats",
    "LocalTopicStats",
    "MessageDecodeError",
    "PickleCodec",
    "ReliableMessageListener",
    "ReliableTopic",
    "ReliableTopicClient",
    "ReliableTopicConfig",
    "ReliableTopicProxy",
    "ReplicationAckError",
    "RingbufferView",
    "StaleSequenceError",
    "StaleSequenceException",
    "TopicConfigConflictError",
    "TopicMessage",
    "TopicOverloadError",
    "TopicOverloadException",
    "TopicOverloadPolicy",
    "TopicResetException",
]
