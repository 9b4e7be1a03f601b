"""The spec's "Handling Backpressure" example, with hazelcast -> hzreliable.

Runs against $REDIS_URL (default redis://localhost:6379/0).
"""

from hzreliable import HazelcastClient, ReliableTopicConfig

client = HazelcastClient()

# --- the spec's example, unchanged but for the package name ---------------
from hzreliable.proxy.reliable_topic import TopicOverloadPolicy  # noqa: E402

# Configure overload behavior
config = ReliableTopicConfig(
    # Block until space available
    overload_policy=TopicOverloadPolicy.BLOCK,
    # Or: discard oldest messages
    # overload_policy=TopicOverloadPolicy.DISCARD_OLDEST,
    # Or: discard newest (incoming) message
    # overload_policy=TopicOverloadPolicy.DISCARD_NEWEST,
    # Or: raise exception
    # overload_policy=TopicOverloadPolicy.ERROR,
)

topic = client.get_reliable_topic("high-volume", config)

# Publishing will respect the overload policy
for i in range(10000):
    topic.publish(f"message-{i}")
# --- (ours) -----------------------------------------------------------------
# No time_to_live: the ring never counts as full, so BLOCK never waits and
# the newest 10,000 messages are kept.
print("TAIL", topic.ringbuffer.tail_sequence(), "SIZE", topic.ringbuffer.size())
client.shutdown()
