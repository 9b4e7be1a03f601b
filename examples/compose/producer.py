"""Publish an OrderCreated event to the topic ``orders`` every second.

Runs against $REDIS_URL (default redis://localhost:6379/0), in the compose
file's ``example`` profile or on its own:

    REDIS_URL=redis://127.0.0.1:6379/0 python examples/compose/producer.py

Each publish prints ``published SEQUENCE JSON``. ``--count N`` exits 0 after
N publishes; SIGTERM or SIGINT stops it cleanly between two publishes.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import uuid
from datetime import datetime, timezone
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
        "--interval",
        type=float,
        default=1.0,
        help="seconds between publishes (default: 1)",
    )
    parser.add_argument(
        "--count", type=positive_int, help="exit after N publishes (default: never)"
    )
    return parser.parse_args(argv)


def order_created(number: int) -> dict[str, Any]:
    return {
        "type": "OrderCreated",
        "order_id": f"order-{uuid.uuid4().hex[:12]}",
        "customer_id": f"customer-{number % 7}",
        "amount_cents": 1000 + 250 * (number % 9),
        "currency": "EUR",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    client = hzreliable.ReliableTopicClient()
    try:
        try:
            topic = client.get_reliable_topic(args.topic)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            print(f"cannot reach Redis: {error}", file=sys.stderr, flush=True)
            return 1
        published = 0
        while not stop.is_set():
            event = order_created(published)
            try:
                sequence = topic.publish(event)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                # Redis restarting (compose recreating it, say) should pause
                # the stream of orders, not end it: the next tick tries again.
                print(f"publish failed: {error}", file=sys.stderr, flush=True)
            else:
                published += 1
                print(f"published {sequence} {json.dumps(event)}", flush=True)
                if args.count is not None and published >= args.count:
                    break
            stop.wait(args.interval)
    finally:
        client.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
