"""The spec's "Event Sourcing Pattern" example, with hazelcast -> hzreliable.

Runs against $REDIS_URL (default redis://localhost:6379/0).
"""

import time

from hzreliable import HazelcastClient
from hzreliable.proxy.reliable_topic import ReliableMessageListener

client = HazelcastClient()

# --- the spec's example, unchanged but for the package name ---------------
# Use ReliableTopic for event sourcing
events_topic = client.get_reliable_topic("order-events")

# Publish domain events
events_topic.publish(
    {
        "type": "OrderCreated",
        "order_id": "order-123",
        "customer_id": "customer-456",
        "items": [{"sku": "PROD-1", "qty": 2}],
        "timestamp": time.time(),
    }
)

events_topic.publish(
    {
        "type": "OrderShipped",
        "order_id": "order-123",
        "tracking_number": "TRACK-789",
        "timestamp": time.time(),
    }
)


# Event processor rebuilds state from events
class OrderProjection(ReliableMessageListener):
    def __init__(self):
        self.orders = {}

    def retrieve_initial_sequence(self):
        return -1  # Replay all events

    def on_message(self, message):
        event = message.message
        order_id = event["order_id"]

        if event["type"] == "OrderCreated":
            self.orders[order_id] = {
                "status": "created",
                "customer_id": event["customer_id"],
                "items": event["items"],
            }
        elif event["type"] == "OrderShipped":  # noqa: SIM102 - the spec's code
            if order_id in self.orders:
                self.orders[order_id]["status"] = "shipped"
                self.orders[order_id]["tracking"] = event["tracking_number"]


# --- (ours: register the projection and wait for it to catch up) ----------
projection = OrderProjection()
events_topic.add_listener(projection)
deadline = time.monotonic() + 10
while (
    projection.orders.get("order-123", {}).get("status") != "shipped"
    and time.monotonic() < deadline
):
    time.sleep(0.01)
print("ORDERS", projection.orders)
client.shutdown()
