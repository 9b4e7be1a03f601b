"""
Benchmark hzreliable against hand-written redis-py on one redis-server.

    .venv/bin/python -m bench.run [--rounds 3] [--messages 5000] [--peers]

Starts its own redis-server on a free loopback port, runs each figure in
alternating rounds (ours, baseline, ours, ...) and prints medians and the
ratio ours/baseline in throughput (higher is better for us).

--peers adds walrus and FastStream (bench/peers.py; needs the packages
``walrus`` and ``faststream[redis]``) to every round (ours, baseline, walrus,
faststream, ours, ...) and prints their medians and the ratios
hzreliable/walrus and hzreliable/faststream.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from bench import figures
from hzreliable import (
    FROM_OLDEST,
    ReliableMessageListener,
    ReliableTopicClient,
    ReliableTopicConfig,
)
from hzreliable._protocol import TopicKeys
from tests.servers import RedisServer

DELIVER_STREAM = TopicKeys.of("bench-deliver").stream
EVENT = {
    "type": "OrderCreated",
    "order_id": "order-123",
    "customer_id": "customer-456",
    "items": [{"sku": "PROD-1", "qty": 2}],
    "timestamp": 1767225600.123,
}


def ours_publish(r: redis.Redis, n: int) -> None:
    with ReliableTopicClient(r) as client:
        topic = client.get_reliable_topic("bench-ours")
        for _ in range(n):
            topic.publish(EVENT)


def redis_publish(r: redis.Redis, n: int) -> None:
    for _ in range(n):
        r.xadd("bench-raw", {"d": json.dumps(EVENT)}, maxlen=10_000, approximate=False)


def ours_publish_all(r: redis.Redis, n: int) -> None:
    with ReliableTopicClient(r) as client:
        topic = client.get_reliable_topic("bench-ours")
        for _ in range(n // 100):
            topic.publish_all([EVENT] * 100)


def redis_publish_all(r: redis.Redis, n: int) -> None:
    for _ in range(n // 100):
        pipe = r.pipeline(transaction=False)
        for _ in range(100):
            pipe.xadd("bench-raw", {"d": json.dumps(EVENT)}, maxlen=10_000)
        pipe.execute()


class _Counter(ReliableMessageListener[Any]):
    def __init__(self, n: int) -> None:
        self.n, self.count, self.done = n, 0, threading.Event()

    def retrieve_initial_sequence(self) -> int:
        return FROM_OLDEST

    def on_message(self, message: Any) -> None:
        self.count += 1
        if self.count == self.n:
            self.done.set()


def ours_delivery(r: redis.Redis, n: int) -> float:
    """Returns its own elapsed time: stopping the client is not delivery."""
    with ReliableTopicClient(r) as client:
        config = ReliableTopicConfig(read_batch_size=100)
        topic = client.get_reliable_topic("bench-deliver", config)
        listener = _Counter(n)
        started = time.perf_counter()
        topic.add_listener(listener)
        if not listener.done.wait(120):
            raise RuntimeError("delivery did not finish")
        return time.perf_counter() - started


def redis_delivery(r: redis.Redis, n: int) -> None:
    last = b"0-0"
    got = 0
    while got < n:
        reply: Any = r.xread({DELIVER_STREAM: last}, count=100, block=500)
        for _, entries in reply:
            for entry_id, fields in entries:
                json.loads(fields[b"d"])
                last = entry_id
                got += 1


def timed(fn: Callable[[redis.Redis, int], Any], r: redis.Redis, n: int) -> float:
    started = time.perf_counter()
    own = fn(r, n)
    elapsed = own if isinstance(own, float) else time.perf_counter() - started
    return n / elapsed


def _run_with_peers(r: redis.Redis, n: int, rounds: int) -> None:
    from bench import peers  # only with --peers: walrus and faststream are optional

    peers.faststream_fill(r, n)
    figures = [
        (
            "publish (msg/s)",
            [
                ours_publish,
                redis_publish,
                peers.walrus_publish,
                peers.faststream_publish,
            ],
        ),
        (
            "publish_all x100 (msg/s)",
            [
                ours_publish_all,
                redis_publish_all,
                peers.walrus_publish_all,
                peers.faststream_publish_all,
            ],
        ),
        (
            "delivery, 1 listener (msg/s)",
            [
                ours_delivery,
                redis_delivery,
                peers.walrus_delivery,
                peers.faststream_delivery,
            ],
        ),
    ]
    print(
        f"{'figure':<30} {'hzreliable':>12} {'redis-py':>12} {'ratio':>7}"
        f" {'walrus':>12} {'faststream':>12} {'hz/walrus':>10} {'hz/faststream':>14}"
    )
    for name, contenders in figures:
        results: list[list[float]] = [[] for _ in contenders]
        for _ in range(rounds):
            for fn, result in zip(contenders, results, strict=True):
                result.append(timed(fn, r, n))
        ours, raw, wal, fst = (statistics.median(result) for result in results)
        print(
            f"{name:<30} {ours:>12,.0f} {raw:>12,.0f} {ours / raw:>7.2f}"
            f" {wal:>12,.0f} {fst:>12,.0f} {ours / wal:>10.2f} {ours / fst:>14.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument(
        "--peers", action="store_true", help="also measure walrus and FastStream"
    )
    parser.add_argument("--fanout-messages", type=int, default=2000)
    parser.add_argument("--memory-messages", type=int, default=1_000_000)
    args = parser.parse_args()
    server = RedisServer().start()
    try:
        r = server.client()
        n = args.messages
        # The delivery figures read a topic filled once, up front.
        with ReliableTopicClient(r) as client:
            config = ReliableTopicConfig(read_batch_size=100)
            client.get_reliable_topic("bench-deliver", config).publish_all([EVENT] * n)
        if args.peers:
            _run_with_peers(r, n, args.rounds)
        else:
            _run_ratios(r, n, args.rounds)
        _run_figures(server, r, args)
    finally:
        server.cleanup()


def _run_ratios(r: redis.Redis, n: int, rounds: int) -> None:
    figures = [
        ("publish (msg/s)", ours_publish, redis_publish),
        ("publish_all x100 (msg/s)", ours_publish_all, redis_publish_all),
        ("delivery, 1 listener (msg/s)", ours_delivery, redis_delivery),
    ]
    print(f"{'figure':<30} {'hzreliable':>12} {'redis-py':>12} {'ratio':>7}")
    for name, ours, baseline in figures:
        a: list[float] = []
        b: list[float] = []
        for _ in range(rounds):
            a.append(timed(ours, r, n))
            b.append(timed(baseline, r, n))
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{name:<30} {ma:>12,.0f} {mb:>12,.0f} {ma / mb:>7.2f}")


def _run_figures(server: RedisServer, r: redis.Redis, args: argparse.Namespace) -> None:
    print()
    print(f"{'fan-out (read_batch_size 100)':<30} {'deliveries/s':>12} {'cmds/msg':>9}")
    for listeners in (1, 10, 100):
        rate, per = figures.fanout(r, listeners, args.fanout_messages)
        print(f"{f'{listeners} listeners':<30} {rate:>12,.0f} {per:>9.4f}")

    print()
    print(
        f"{'latency publish->on_message':<30} {'p50 ms':>8} {'p99 ms':>8} {'p99.9':>8}"
    )
    for label, rate, count in (("1,000 msg/s", 1000.0, 3000), ("max rate", None, 5000)):
        for who, measure in (
            ("hzreliable", figures.latency_ours),
            ("redis-py", figures.latency_redis),
        ):
            started = time.perf_counter()
            samples = measure(r, rate, count)
            elapsed = time.perf_counter() - started
            p50, p99, p999 = figures.percentiles(samples)
            shown = label if rate else f"{label} ({count / elapsed:,.0f}/s)"
            print(f"{f'{who}, {shown}':<30} {p50:>8.2f} {p99:>8.2f} {p999:>8.2f}")

    print()
    peaks = figures.memory(server.url, args.memory_messages)
    print(
        f"peak RSS (KiB) every {args.memory_messages // 10:,} of "
        f"{args.memory_messages:,} messages, slow listener: "
        + " ".join(f"{p:,}" for p in peaks)
    )


if __name__ == "__main__":
    main()
