"""
hzreliable for asyncio applications.

The same reliable topic as the threaded API, with coroutines instead of
blocking calls and a task instead of a thread per listener::

    from hzreliable.asyncio import FROM_OLDEST, ReliableTopicClient

    async with ReliableTopicClient(url="redis://localhost:6379/0") as client:
        topic = await client.get_reliable_topic("orders")
        await topic.publish({"type": "OrderCreated"})
        async for message in topic.messages(start=FROM_OLDEST):
            ...
"""

from ._async import (
    AsyncRingbufferView,
    HazelcastClient,
    ReliableTopic,
    ReliableTopicClient,
)
from ._config import ReliableTopicConfig, TopicOverloadPolicy
from ._errors import (
    ForeignEntryError,
    HzReliableError,
    MessageDecodeError,
    ReplicationAckError,
    StaleSequenceException,
    TopicConfigConflictError,
    TopicOverloadException,
    TopicResetException,
)
from ._listener import FROM_LATEST, FROM_OLDEST, ReliableMessageListener, TopicMessage
from ._stats import ListenerStats, LocalTopicStats

ReliableTopicProxy = ReliableTopic

__all__ = [
    "FROM_LATEST",
    "FROM_OLDEST",
    "AsyncRingbufferView",
    "ForeignEntryError",
    "HazelcastClient",
    "HzReliableError",
    "ListenerStats",
    "LocalTopicStats",
    "MessageDecodeError",
    "ReliableMessageListener",
    "ReliableTopic",
    "ReliableTopicClient",
    "ReliableTopicConfig",
    "ReliableTopicProxy",
    "ReplicationAckError",
    "StaleSequenceException",
    "TopicConfigConflictError",
    "TopicMessage",
    "TopicOverloadException",
    "TopicOverloadPolicy",
    "TopicResetException",
]
