"""
The figures that are not a throughput ratio: fan-out, end-to-end latency and
memory under a slow listener. Each starts from an empty server state.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import redis

from hzreliable import (
    FROM_LATEST,
    FROM_OLDEST,
    ReliableMessageListener,
    ReliableTopicClient,
    ReliableTopicConfig,
)

EVENT = {
    "type": "OrderCreated",
    "order_id": "order-123",
    "customer_id": "customer-456",
    "items": [{"sku": "PROD-1", "qty": 2}],
    "timestamp": 1767225600.123,
}


class _Count(ReliableMessageListener[Any]):
    def __init__(self, n: int) -> None:
        self.n, self.count, self.done = n, 0, threading.Event()

    def retrieve_initial_sequence(self) -> int:
        return FROM_OLDEST

    def on_message(self, message: Any) -> None:
        self.count += 1
        if self.count == self.n:
            self.done.set()


def _commands(r: redis.Redis) -> int:
    stats: Any = r.info("commandstats")
    ignored = {"cmdstat_info", "cmdstat_config", "cmdstat_flushall"}
    return sum(v["calls"] for k, v in stats.items() if k not in ignored)


def fanout(r: redis.Redis, listeners: int, n: int) -> tuple[float, float]:
    """Deliveries per second in total, and Redis commands per delivery."""
    r.flushall()
    config = ReliableTopicConfig(read_batch_size=100)
    with ReliableTopicClient(r) as client:
        topic = client.get_reliable_topic("bench-fanout", config)
        topic.publish_all([EVENT] * n)
        counters = [_Count(n) for _ in range(listeners)]
        r.config_resetstat()
        started = time.perf_counter()
        for counter in counters:
            topic.add_listener(counter)
        for counter in counters:
            if not counter.done.wait(300):
                raise RuntimeError("fan-out did not finish")
        elapsed = time.perf_counter() - started
        commands = _commands(r)
    return listeners * n / elapsed, commands / (listeners * n)


class _Latency(ReliableMessageListener[Any]):
    def __init__(self, n: int) -> None:
        self.n, self.done = n, threading.Event()
        self.samples: list[float] = []

    def retrieve_initial_sequence(self) -> int:
        return FROM_LATEST

    def on_message(self, message: Any) -> None:
        self.samples.append(time.perf_counter() - message.message["sent"])
        if len(self.samples) == self.n:
            self.done.set()


def _pace(rate: float | None, n: int, send: Any) -> None:
    started = time.perf_counter()
    for i in range(n):
        if rate is not None:
            due = started + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        send({**EVENT, "sent": time.perf_counter()})


def latency_ours(r: redis.Redis, rate: float | None, n: int) -> list[float]:
    r.flushall()
    with ReliableTopicClient(r) as client:
        topic = client.get_reliable_topic("bench-latency")
        listener = _Latency(n)
        topic.add_listener(listener)
        _pace(rate, n, topic.publish)
        if not listener.done.wait(120):
            raise RuntimeError("latency run did not finish")
        return listener.samples


def latency_redis(r: redis.Redis, rate: float | None, n: int) -> list[float]:
    """The same measurement with XADD and a blocking XREAD loop by hand."""
    r.flushall()
    samples: list[float] = []

    def read() -> None:
        kwargs = r.connection_pool.connection_kwargs
        reader = redis.Redis(host=kwargs["host"], port=kwargs["port"])
        last = "0-0"  # the stream was just emptied: everything is new
        while len(samples) < n:
            reply: Any = reader.xread({"bench-raw": last}, count=100, block=1000)
            for _, entries in reply:
                for entry_id, fields in entries:
                    sent = json.loads(fields[b"d"])["sent"]
                    samples.append(time.perf_counter() - sent)
                    last = entry_id
        reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    _pace(
        rate,
        n,
        lambda m: r.xadd("bench-raw", {"d": json.dumps(m)}, maxlen=10_000),
    )
    thread.join(120)
    return samples


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p99 and p99.9 in milliseconds."""
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return at(0.50), at(0.99), at(0.999)


def memory(url: str, messages: int) -> list[int]:
    """Peak RSS (KiB) sampled while a slow listener trails a fast publisher,
    measured in a process of its own."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory", url, str(messages)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return [int(x) for x in out.stdout.split()]
