"""Fault 6: 64 producer processes (forked from one that already holds a connection) emit at once
into one collector: exactly every record is stored, and no child reused its parent's socket."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import redis

from faults.servers import Process, drained, start_collector, wait_for_rows, wait_until

pytestmark = pytest.mark.slow
FLEET = Path(__file__).with_name("fleet.py")
PROCS, EACH = 64, 100


def test_64_concurrent_producers_into_one_collector(redis_server, sqlite_url, queue) -> None:
    url = redis_server.url()
    daemon = start_collector(url, sqlite_url, queue)
    try:
        fleet = Process([sys.executable, str(FLEET), url, queue, str(PROCS), str(EACH)])
        assert fleet.stop(None, timeout=120) == 0, fleet.err
        connections = fleet.out.split()
        assert len(connections) == PROCS + 1
        assert len(set(connections)) == PROCS + 1  # every process on its own connection
        expected = {f"c{k}-{i}" for k in range(PROCS) for i in range(EACH)} | {"parent"}
        wait_for_rows(sqlite_url, expected, timeout=90)
        client = redis.Redis.from_url(url)
        wait_until(lambda: drained(client, queue), 30, "the stream to be drained")
        client.close()
    finally:
        assert daemon.stop() == 0, daemon.err
