"""Print the topic ``orders`` and resume where the last run stopped.

Runs against $REDIS_URL (default redis://localhost:6379/0), in the compose
file's ``example`` profile or on its own:

    REDIS_URL=redis://127.0.0.1:6379/0 python examples/compose/consumer.py \\
        --state /tmp/orders-consumer.json

The state file holds the next sequence to read. Without one the consumer
starts at the oldest retained message. Each message prints
``consumed SEQUENCE JSON``. ``--count N`` exits 0 after N messages; SIGTERM
or SIGINT stops it cleanly. Exits 1 if the listener ends by itself (messages
were lost, or the topic was reset under it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import redis

import hzreliable


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default="orders", help="topic (default: orders)")
    parser.add_argument(
        "--state",
        type=Path,
        default=Path("orders-consumer.json"),
        help="file holding the next sequence (default: ./orders-consumer.json)",
    )
    parser.add_argument(
        "--count", type=positive_int, help="exit after N messages (default: never)"
    )
    return parser.parse_args(argv)


def load_next_sequence(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    value = json.loads(text)["next_sequence"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{path}: next_sequence must be an int >= 0, not {value!r}")
    return value


def save_next_sequence(path: Path, sequence: int) -> None:
    # Replace the file whole, so that a kill mid-write leaves the previous
    # position rather than a torn file that would stop every later start.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump({"next_sequence": sequence}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class OrderPrinter(hzreliable.ReliableMessageListener[Any]):
    def __init__(
        self, state: Path, start: int | None, count: int | None, done: threading.Event
    ) -> None:
        self.state = state
        self.start = start
        self.count = count
        self.done = done
        self.handled = 0

    def finished(self) -> bool:
        return self.count is not None and self.handled >= self.count

    def retrieve_initial_sequence(self) -> int:
        return hzreliable.FROM_OLDEST if self.start is None else self.start

    def store_sequence(self, sequence: int) -> None:
        # The runner keeps delivering until shutdown stops it; past --count
        # the position must stay where the last printed message left it.
        if self.finished():
            return
        # The runner calls this just before on_message, as Hazelcast does:
        # a crash between the two skips that one message (at most once). A
        # consumer that must never skip would save in on_message instead.
        save_next_sequence(self.state, sequence + 1)

    def on_message(self, message: hzreliable.TopicMessage[Any]) -> None:
        if self.finished():
            return
        body = json.dumps(message.message, default=str)
        print(f"consumed {message.sequence} {body}", flush=True)
        self.handled += 1
        if self.finished():
            self.done.set()

    def is_loss_tolerant(self) -> bool:
        # A gap should stop the demo loudly, not be skipped over.
        return False

    def is_terminal(self, error: BaseException) -> bool:
        # Going on without saving the position would replay or skip on the
        # next start; any other error (an undecodable entry) is logged only.
        return isinstance(error, OSError)

    def on_cancel(self) -> None:
        self.done.set()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())

    try:
        start = load_next_sequence(args.state)
    except (OSError, ValueError, KeyError) as error:
        print(f"cannot read {args.state}: {error!r}", file=sys.stderr, flush=True)
        return 1
    listener = OrderPrinter(args.state, start, args.count, done)
    client = hzreliable.ReliableTopicClient()
    try:
        try:
            topic = client.get_reliable_topic(args.topic)
            registration = topic.add_listener(listener)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            print(f"cannot reach Redis: {error}", file=sys.stderr, flush=True)
            return 1
        where = "the oldest message" if start is None else f"sequence {start}"
        print(f"listening to {args.topic!r} from {where}", flush=True)
        # A timed wait keeps the main thread returning to the interpreter, so
        # the signal handlers run promptly.
        while not done.wait(0.5):
            pass
        ended = topic.listener_error(registration)
    finally:
        client.shutdown()
    if ended is not None:
        print(f"listener ended: {ended!r}", file=sys.stderr, flush=True)
        return 1
    print(f"stopped after {listener.handled} messages", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
