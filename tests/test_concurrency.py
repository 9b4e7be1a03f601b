"""Many publishers at once: threads on both backends, processes on a real one."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

from hzreliable import FROM_OLDEST, ReliableTopicClient, ReliableTopicConfig

from .conftest import eventually
from .helpers import Recorder

PUBLISHERS = 4
EACH = 40
# Retention keeps a message at least this long, so BLOCK holds publishers back
# while the listener, which must not lose a message, reads it. It must outlast
# a scheduling hiccup of a loaded 2-core machine, or the listener falls behind.
TTL = 0.2


def _check_delivery(topic: Any, recorder: Recorder) -> None:
    eventually(lambda: len(recorder.messages) == PUBLISHERS * EACH, timeout=60)
    assert recorder.sequences == list(range(PUBLISHERS * EACH))
    by_publisher: dict[int, list[int]] = {}
    for message in recorder.received:
        by_publisher.setdefault(message["p"], []).append(message["i"])
    assert by_publisher == {p: list(range(EACH)) for p in range(PUBLISHERS)}
    assert topic.ringbuffer.size() <= topic.config.capacity


def test_threads_publishing_under_block_keep_order_and_capacity(
    client: ReliableTopicClient,
) -> None:
    config = ReliableTopicConfig(capacity=20, time_to_live=TTL, read_batch_size=20)
    topic = client.get_reliable_topic("race", config)
    recorder = Recorder(FROM_OLDEST)
    topic.add_listener(recorder)
    sizes: list[int] = []

    def publish(p: int) -> None:
        for i in range(EACH):
            topic.publish({"p": p, "i": i}, timeout=30)
            sizes.append(topic.ringbuffer.size())

    threads = [threading.Thread(target=publish, args=(p,)) for p in range(PUBLISHERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    _check_delivery(topic, recorder)
    assert max(sizes) <= 20


def _publish_from_process(url: str, p: int) -> None:
    config = ReliableTopicConfig(capacity=20, time_to_live=TTL, read_batch_size=20)
    with ReliableTopicClient.from_url(url) as client:
        topic = client.get_reliable_topic("procs", config)
        for i in range(EACH):
            topic.publish({"p": p, "i": i}, timeout=30)


def test_processes_publishing_under_block_keep_order_and_capacity(
    redis_server: Any,
) -> None:
    redis_server.client().flushdb()
    config = ReliableTopicConfig(capacity=20, time_to_live=TTL, read_batch_size=20)
    with ReliableTopicClient.from_url(redis_server.url) as client:
        topic = client.get_reliable_topic("procs", config)
        recorder = Recorder(FROM_OLDEST)
        topic.add_listener(recorder)
        context = multiprocessing.get_context("spawn")
        processes = [
            context.Process(target=_publish_from_process, args=(redis_server.url, p))
            for p in range(PUBLISHERS)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)

        assert [p.exitcode for p in processes] == [0] * PUBLISHERS
        _check_delivery(topic, recorder)
