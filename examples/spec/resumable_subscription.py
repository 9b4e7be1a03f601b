"""The spec's "Resumable Subscription" example, with hazelcast -> hzreliable.

Run it twice with the same state file: the second run resumes where the
first stopped. Runs against $REDIS_URL (default redis://localhost:6379/0).
"""

import json
import sys
import time

from hzreliable import HazelcastClient
from hzreliable.proxy.reliable_topic import ReliableMessageListener

state_file = sys.argv[1] if len(sys.argv) > 1 else "/tmp/topic-state.json"
processed = []


def process_message(message):
    """The spec leaves this to the reader: print and remember."""
    print(f"processing {message}")
    processed.append(message)


client = HazelcastClient()
topic = client.get_reliable_topic("resumable")


# --- the spec's example, unchanged but for the package name ---------------
class ResumableListener(ReliableMessageListener):
    def __init__(self, state_file):
        self.state_file = state_file
        self._last_sequence = self._load_sequence()

    def _load_sequence(self):
        try:
            with open(self.state_file) as f:
                return json.load(f).get("sequence", -1)
        except FileNotFoundError:
            return -1

    def _save_sequence(self, seq):
        with open(self.state_file, "w") as f:
            json.dump({"sequence": seq}, f)

    def retrieve_initial_sequence(self):
        # Resume from last processed message
        return self._last_sequence

    def store_sequence(self, sequence):
        self._last_sequence = sequence
        self._save_sequence(sequence)

    def on_message(self, message):
        process_message(message.message)
        self.store_sequence(message.sequence)

    def is_loss_tolerant(self):
        return False

    def is_terminal(self, error):
        return False


listener = ResumableListener(state_file)
topic.add_listener(listener)
# --- (ours: publish a batch and wait until this run has seen it) ----------
batch = sys.argv[2] if len(sys.argv) > 2 else "run"
sequences = topic.publish_all([f"{batch}-{i}" for i in range(3)])
deadline = time.monotonic() + 10
while (not processed or processed[-1] != f"{batch}-2") and time.monotonic() < deadline:
    time.sleep(0.01)
print("PROCESSED", json.dumps(processed))
client.shutdown()
