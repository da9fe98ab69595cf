"""2,000 records of 8 MB arrays drained into ``--arrays``, from a backlog: the collector's reads
are bounded in bytes, so its peak memory stays under a bound that does not grow with the
records (README and docs/arrays.md state it)."""

from __future__ import annotations

import random
from pathlib import Path

import h5py
import numpy as np
import pytest
import redis
import sqlalchemy as sa

from faults.servers import RedisServer, drained, python, start_collector, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
RECORDS = 2000  # x 8 MB: 16 GB through the collector
BACKLOG = 300  # x 8 MB: 2.4 GB waiting in Redis when the collector starts, and at most after
PEAK_BOUND = 1 << 30  # bytes: the collector's peak RSS draining it, --batch-size 2000

PRODUCER = """
import sys, time, numpy as np, redis
from workers import Emitter
url, queue, start, stop, backlog = *sys.argv[1:3], *map(int, sys.argv[3:6])
emitter, client = Emitter(url, queue), redis.Redis.from_url(url)
for i in range(start, stop):
    while client.xlen(queue) >= backlog:  # Redis holds the backlog, not all 16 GB
        time.sleep(0.05)
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
    url, path = quiet_redis.url(), tmp_path / "a.h5"
    first = python(PRODUCER, url, queue, "0", str(BACKLOG), str(BACKLOG + 1))
    assert first.stop(None, timeout=600) == 0, first.err  # the backlog waits
    daemon = start_collector(
        url, sqlite_url, queue, "c1", "--arrays", str(path),
        "--batch-size", "2000", "--max-record-bytes", str(16 << 20),
    )  # fmt: skip
    rest = python(PRODUCER, url, queue, str(BACKLOG), str(RECORDS), str(BACKLOG))
    client = redis.Redis.from_url(url, socket_timeout=120)  # a huge read keeps Redis busy
    try:
        assert rest.stop(None, timeout=3000) == 0, rest.err
        wait_until(lambda: drained(client, queue), 900, "the records to be drained", every=0.5)
        peak = peak_rss(daemon.pid)
    finally:
        client.close()
        assert daemon.stop() == 0, daemon.err
    try:
        print(f"peak RSS {peak / 2**20:.0f} MiB draining {RECORDS} records of 8 MiB")
        assert peak < PEAK_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"
        check_stored(sqlite_url, path)
    finally:
        path.unlink()  # 16 GB: not left for pytest's kept temporary directories


def check_stored(db_url: str, path: Path) -> None:
    """Every record one row and one named slot; a sample of the arrays exact."""
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT COUNT(*), COUNT(DISTINCT _id) FROM big").one()
    engine.dispose()
    assert tuple(rows) == (RECORDS, RECORDS)
    with h5py.File(path, "r", libver="latest", swmr=True) as file:
        group = file[f"big/K/f8_{1 << 20}"]
        ids = [v.decode() for v in group["_id"][:]]
        named = {rid: slot for slot, rid in enumerate(ids) if rid}
        assert sorted(named) == sorted(f"r{i}" for i in range(RECORDS))
        for i in (0, BACKLOG, RECORDS - 1, *random.sample(range(RECORDS), 5)):
            assert (group["data"][named[f"r{i}"]] == np.full(1 << 20, i, "f8")).all(), i
