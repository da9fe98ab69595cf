"""``--arrays``: many producers' 1 MB arrays into one HDF5 file, a SWMR reader opening it while
the collector writes, and a collector SIGKILLed during HDF5 writes: every array exactly once."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import redis

import collector
from faults.servers import RedisServer, drained, python, start_collector, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # 1.6 GB through 2 shared cores
SIDE = 250_000  # float32 values: 1 MB an array
LIMIT = ["--max-record-bytes", str(2 << 20)]

PRODUCER = """
import sys, numpy as np
from workers import Emitter
url, queue, prefix, count, side = *sys.argv[1:4], int(sys.argv[4]), int(sys.argv[5])
emitter = Emitter(url, queue)
for i in range(count):
    K = np.random.default_rng([int(prefix[1:]), i]).random(side, dtype="float32")
    emitter.emit({"p": prefix, "i": i, "K": K}, table="arr", key=f"{prefix}-{i}")
emitter.close()
"""

READER = """
import os, sys, time, h5py, numpy as np
path, stop, side = sys.argv[1], sys.argv[2], int(sys.argv[3])
opened, seen, counts = 0, 0, set()
while not os.path.exists(stop):
    try:
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            opened += 1
            group = f[f"arr/K/f4_{side}"]
            ids, data = group["_id"], group["data"]
            ids.refresh(); data.refresh()
            named = np.flatnonzero(ids[:] != b"")
            counts.add(len(named))
            for slot in named[-3:]:
                rid = ids[slot].decode()
                prefix, i = rid.split("-")
                want = np.random.default_rng([int(prefix[1:]), int(i)]).random(side, dtype="f4")
                assert (data[slot] == want).all(), rid
                seen += 1
    except (OSError, KeyError):
        pass  # not created yet, or being reopened to add a group
    time.sleep(0.2)
print(opened, seen, *sorted(counts))
"""


def expected(prefix: str, i: int) -> np.ndarray:
    return np.random.default_rng([int(prefix[1:]), i]).random(SIDE, dtype="float32")


@pytest.fixture
def quiet_redis(tmp_path: Path) -> RedisServer:
    """A private redis-server without the AOF: gigabytes of arrays pass through it."""
    server = RedisServer(tmp_path / "redis", "--appendonly", "no")
    server.start()
    yield server
    server.stop()


def check_file(path: Path, keys: set[str]) -> None:
    """With h5py alone: each key named once, beside its exact array; nothing else named."""
    with h5py.File(path, "r", libver="latest", swmr=True) as file:
        group = file[f"arr/K/f4_{SIDE}"]
        ids = group["_id"][:]
        named = np.flatnonzero(ids != b"")
        names = [ids[slot].decode() for slot in named]
        assert sorted(names) == sorted(keys)
        for slot, rid in zip(named, names, strict=True):
            prefix, i = rid.split("-")
            assert (group["data"][slot] == expected(prefix, int(i))).all(), rid


def check_rows(db_url: str, path: Path, keys: set[str]) -> None:
    frame = collector.read("arr", db_url, arrays=str(path))
    assert sorted(frame["_id"]) == sorted(keys)
    for rid, value in zip(frame["_id"], frame["K"], strict=True):
        prefix, i = rid.split("-")
        assert value.dtype == np.float32 and (value == expected(prefix, int(i))).all(), rid


def test_sixteen_producers_into_one_file_with_a_swmr_reader(
    quiet_redis, sqlite_url, queue, tmp_path
) -> None:
    url, path = quiet_redis.url(), tmp_path / "results.h5"
    daemon = start_collector(url, sqlite_url, queue, "c1", "--arrays", str(path), *LIMIT)
    producers = [python(PRODUCER, url, queue, f"p{k}", "100", str(SIDE)) for k in range(16)]
    wait_until(path.exists, 120, "the HDF5 file")
    stop_reading = tmp_path / "stop-reading"
    reader = python(READER, str(path), str(stop_reading), str(SIDE))
    keys = {f"p{k}-{i}" for k in range(16) for i in range(100)}
    try:
        for proc in producers:
            assert proc.stop(None, timeout=600) == 0, proc.err
        client = redis.Redis.from_url(url)
        wait_until(lambda: drained(client, queue), 600, "the stream to be drained", every=0.5)
        client.close()
        stop_reading.touch()
        assert reader.stop(None, timeout=120) == 0, reader.err
        opened, seen, *counts = map(int, reader.out.split())
        assert opened > 0 and seen > 0, reader.out
        assert any(0 < n < len(keys) for n in counts), reader.out  # it read mid-collection
        check_file(path, keys)  # while the collector still runs (SWMR)
    finally:
        assert daemon.stop() == 0, daemon.err
    check_file(path, keys)  # and after it stopped
    check_rows(sqlite_url, path, keys)


def test_sigkill_during_hdf5_writes_three_times_stores_each_array_once(
    quiet_redis, sqlite_url, queue, tmp_path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"random seed {seed}")
    url, path = quiet_redis.url(), tmp_path / "results.h5"
    args = (url, sqlite_url, queue, "c1", "--arrays", str(path), "--batch-size", "20", *LIMIT)
    producers = [python(PRODUCER, url, queue, f"p{k}", "100", str(SIDE)) for k in range(4)]
    daemon = start_collector(*args)
    for _ in range(3):
        wait_until(path.exists, 120, "the HDF5 file")
        time.sleep(rng.uniform(0.5, 2.0))
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        with h5py.File(path, "r", libver="latest", swmr=True):
            pass  # a killed SWMR writer's file opens for reading
        daemon = start_collector(*args)
    keys = {f"p{k}-{i}" for k in range(4) for i in range(100)}
    try:
        for proc in producers:
            assert proc.stop(None, timeout=600) == 0, proc.err
        client = redis.Redis.from_url(url)
        wait_until(lambda: drained(client, queue), 600, "the stream to be drained", every=0.5)
        assert client.xlen(f"{queue}:dead") == 0
        client.close()
    finally:
        assert daemon.stop() == 0, daemon.err
    assert "flags are cleared" in daemon.err  # the last start found a killed writer's flags
    check_file(path, keys)
    check_rows(sqlite_url, path, keys)
