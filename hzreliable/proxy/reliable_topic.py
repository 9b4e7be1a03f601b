"""The Hazelcast Python client's import path (``hazelcast.proxy.reliable_topic``),
for code ported from it."""

from .._config import ReliableTopicConfig, TopicOverloadPolicy
from .._errors import StaleSequenceException, TopicOverloadException
from .._listener import ReliableMessageListener, TopicMessage
from .._topic import ReliableTopicProxy

__all__ = [
    "ReliableMessageListener",
    "ReliableTopicConfig",
    "ReliableTopicProxy",
    "StaleSequenceException",
    "TopicMessage",
    "TopicOverloadException",
    "TopicOverloadPolicy",
]
