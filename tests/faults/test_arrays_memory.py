"""A backlog of 8 MB arrays: the collector's reads are bounded in bytes, so its peak memory
stays under a bound that does not grow with the backlog (docs/arrays.md states it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from faults.servers import RedisServer, drained, python, start_collector, wait_until

pytestmark = pytest.mark.slow
RECORDS = 300  # x 8 MB: a 2.4 GB backlog
PEAK_BOUND = 1 << 30  # bytes: the collector's peak RSS draining it, --batch-size 2000

PRODUCER = """
import sys, numpy as np
from workers import Emitter
emitter = Emitter(sys.argv[1], sys.argv[2])
for i in range(int(sys.argv[3])):
    emitter.emit({"i": i, "K": np.full(1 << 20, i, dtype="float64")}, table="big", key=f"r{i}")
emitter.close()
"""


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def quiet_redis(tmp_path: Path) -> RedisServer:
    """A private redis-server without the AOF: gigabytes of arrays pass through it."""
    server = RedisServer(tmp_path / "redis", "--appendonly", "no")
    server.start()
    yield server
    server.stop()


def test_draining_a_backlog_of_8_mb_arrays_stays_under_the_memory_bound(
    quiet_redis, sqlite_url, queue, tmp_path
) -> None:
    url = quiet_redis.url()
    producer = python(PRODUCER, url, queue, str(RECORDS))
    assert producer.stop(None, timeout=600) == 0, producer.err  # the whole backlog waits
    daemon = start_collector(
        url, sqlite_url, queue, "c1", "--arrays", str(tmp_path / "a.h5"),
        "--batch-size", "2000", "--max-record-bytes", str(16 << 20),
    )  # fmt: skip
    client = redis.Redis.from_url(url, socket_timeout=120)  # a huge read keeps Redis busy
    try:
        wait_until(lambda: drained(client, queue), 900, "the backlog to be drained", every=0.5)
        peak = peak_rss(daemon.pid)
    finally:
        client.close()
        assert daemon.stop() == 0, daemon.err
    print(f"peak RSS {peak / 2**20:.0f} MiB draining {RECORDS} records of 8 MiB")
    assert peak < PEAK_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"
