"""The spec's import path for the reliable topic and its companions."""

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
