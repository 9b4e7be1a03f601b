"""The spec's "Basic Reliable Messaging" example, with hazelcast -> hzreliable.

Runs against $REDIS_URL (default redis://localhost:6379/0).
"""

import time

from hzreliable import HazelcastClient
from hzreliable.proxy.reliable_topic import ReliableMessageListener


class SomeUnrecoverableError(Exception):
    """The spec leaves this name to the reader."""


received = []

# --- the spec's example, unchanged but for the package name ---------------
client = HazelcastClient()

# Get or create a reliable topic
topic = client.get_reliable_topic("events")


# Create a reliable listener
class MyListener(ReliableMessageListener):
    def on_message(self, message):
        print(f"Received: {message.message}")
        print(f"Sequence: {message.sequence}")
        received.append(message.message)

    def retrieve_initial_sequence(self):
        # Start from the oldest available message
        return -1

    def store_sequence(self, sequence):
        # Optionally persist sequence for recovery
        pass

    def is_loss_tolerant(self):
        # True = skip gaps; False = terminate on gaps
        return False

    def is_terminal(self, error):
        # Return True to stop listening on error
        return isinstance(error, SomeUnrecoverableError)


# Subscribe
reg_id = topic.add_listener(MyListener())

# Publish
topic.publish("Event 1")
topic.publish("Event 2")
# --- (the check below is ours: wait for delivery before unsubscribing) -----
deadline = time.monotonic() + 10
while len(received) < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
assert received == ["Event 1", "Event 2"], received

# Unsubscribe
topic.remove_listener(reg_id)

client.shutdown()
