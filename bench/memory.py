"""
``python -m bench.memory URL MESSAGES``: publish MESSAGES to a topic of
capacity 10,000 as fast as possible while a deliberately slow, loss-tolerant
listener trails behind; print the peak RSS (KiB) after each tenth.
Flat numbers mean the client buffers nothing per message published.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

from hzreliable import FROM_OLDEST, ReliableMessageListener, ReliableTopicClient

PAYLOAD = {"type": "OrderCreated", "order_id": "order-123", "pad": "x" * 100}


class Slow(ReliableMessageListener[Any]):
    def retrieve_initial_sequence(self) -> int:
        return FROM_OLDEST

    def is_loss_tolerant(self) -> bool:
        return True

    def on_message(self, message: Any) -> None:
        time.sleep(0.001)


def main() -> None:
    url, messages = sys.argv[1], int(sys.argv[2])
    peaks = []
    with ReliableTopicClient.from_url(url) as client:
        topic = client.get_reliable_topic("bench-memory")
        topic.add_listener(Slow())
        batch = [PAYLOAD] * 1000
        for done in range(0, messages, 1000):
            topic.publish_all(batch)
            if (done + 1000) % (messages // 10) == 0:
                peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(" ".join(str(p) for p in peaks))


if __name__ == "__main__":
    main()
