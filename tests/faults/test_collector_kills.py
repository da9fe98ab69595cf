"""Fault 1: the collector is SIGKILLed three times at random moments while four producers emit."""

from __future__ import annotations

import random
import signal
import time

import pytest
import redis

from faults.servers import drained, producer, start_collector, wait_for_rows, wait_until

pytestmark = pytest.mark.slow
PRODUCERS, EACH = 4, 1500


def test_sigkill_three_times_under_load_loses_and_duplicates_nothing(
    redis_server, sqlite_url, queue
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"random seed {seed}")
    url = redis_server.url()
    producers = [producer(url, queue, f"p{k}", EACH, pause=0.001) for k in range(PRODUCERS)]
    daemon = start_collector(url, sqlite_url, queue)
    for _ in range(3):
        time.sleep(rng.uniform(0.3, 1.2))
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        daemon = start_collector(url, sqlite_url, queue)
    try:
        for proc in producers:
            assert proc.stop(None, timeout=60) == 0, proc.err
        expected = {f"p{k}-{i}" for k in range(PRODUCERS) for i in range(EACH)}
        wait_for_rows(sqlite_url, expected, timeout=90)
        client = redis.Redis.from_url(url)
        wait_until(lambda: drained(client, queue), 30, "the stream to be drained")
        assert client.xlen(f"{queue}:dead") == 0
        client.close()
    finally:
        assert daemon.stop() == 0, daemon.err
