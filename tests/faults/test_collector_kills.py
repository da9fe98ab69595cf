"""Fault 1: the collector is SIGKILLed three times at random moments while four producers emit;
pipelined, its reader process or its writer process is; and a SIGTERM under load. Every record
is stored exactly once in the end."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
import redis

from collector.errors import RET_FAILED
from faults.servers import (
    Process,
    drained,
    gone,
    producer,
    start_collector,
    wait_for_rows,
    wait_until,
    writer_pid,
)

pytestmark = pytest.mark.slow
PRODUCERS, EACH = 4, 1500


def under_load(url: str, queue: str) -> tuple[list[Process], random.Random]:
    seed = random.randrange(1 << 30)
    print(f"random seed {seed}")
    return [producer(url, queue, f"p{k}", EACH, pause=0.001) for k in range(PRODUCERS)], (
        random.Random(seed)
    )


def all_stored_once(producers: list[Process], url: str, sqlite_url: str, queue: str) -> None:
    for proc in producers:
        assert proc.stop(None, timeout=60) == 0, proc.err
    expected = {f"p{k}-{i}" for k in range(PRODUCERS) for i in range(EACH)}
    wait_for_rows(sqlite_url, expected, timeout=90)
    client = redis.Redis.from_url(url)
    wait_until(lambda: drained(client, queue), 30, "the stream to be drained")
    assert client.xlen(f"{queue}:dead") == 0
    client.close()


def test_sigkill_three_times_under_load_loses_and_duplicates_nothing(
    redis_server, sqlite_url, queue, mode
) -> None:
    url = redis_server.url()
    producers, rng = under_load(url, queue)
    daemon = start_collector(url, sqlite_url, queue)
    for _ in range(3):
        time.sleep(rng.uniform(0.3, 1.2))
        writer = writer_pid(daemon) if mode == "pipeline" else None
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        if writer is not None:  # the writer dies with its reader, lock and all
            wait_until(lambda w=writer: gone(w), 5, "the writer to end with the reader")
        daemon = start_collector(url, sqlite_url, queue)
    try:
        all_stored_once(producers, url, sqlite_url, queue)
    finally:
        assert daemon.stop() == 0, daemon.err


def test_the_writer_sigkilled_three_times_under_load_ends_the_pair_and_loses_nothing(
    redis_server, sqlite_url, queue, monkeypatch
) -> None:
    monkeypatch.setenv("COLLECTOR_PIPELINE", "1")
    url = redis_server.url()
    producers, rng = under_load(url, queue)
    daemon = start_collector(url, sqlite_url, queue)
    for _ in range(3):
        time.sleep(rng.uniform(0.3, 1.2))
        os.kill(writer_pid(daemon), signal.SIGKILL)
        assert daemon.stop(None) == RET_FAILED
        (last,) = [line for line in daemon.err.splitlines() if line.startswith("Error:")]
        assert last.startswith("Error: the writer process ended (killed by SIGKILL)")
        assert "Traceback" not in daemon.err
        daemon = start_collector(url, sqlite_url, queue)
    try:
        all_stored_once(producers, url, sqlite_url, queue)
    finally:
        assert daemon.stop() == 0, daemon.err


def test_sigterm_under_load_stops_cleanly_and_loses_nothing(
    redis_server, sqlite_url, queue, mode
) -> None:
    url = redis_server.url()
    producers, rng = under_load(url, queue)
    daemon = start_collector(url, sqlite_url, queue)
    time.sleep(rng.uniform(0.3, 1.2))
    writer = writer_pid(daemon) if mode == "pipeline" else None
    assert daemon.stop() == 0, daemon.err
    assert writer is None or gone(writer)
    assert "collector stopped" in daemon.err
    daemon = start_collector(url, sqlite_url, queue)
    try:
        all_stored_once(producers, url, sqlite_url, queue)
    finally:
        assert daemon.stop() == 0, daemon.err
