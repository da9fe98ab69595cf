"""Fault 2: Redis (private, AOF on) stops during emits and comes back; every id that ``emit``
returned is stored in the end, by retry or through the spool."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from faults.servers import (
    collector,
    drained,
    producer,
    python,
    start_collector,
    stored_ids,
    wait_for_rows,
    wait_until,
)
from workers.entry import decode_records
from workers.spool import Spool, parse

pytestmark = pytest.mark.slow
EACH = 600


def consumers(client: redis.Redis, queue: str) -> set[bytes]:
    try:
        return {c["name"] for c in client.xinfo_consumers(queue, "collector")}
    except redis.ResponseError:  # no stream or group yet
        return set()


def test_redis_restart_during_emits_loses_nothing(redis_server, sqlite_url, queue, tmp_path, mode):
    url = redis_server.url()
    spool_dir = tmp_path / "spool"
    env = {**os.environ, "COLLECTOR_SPOOL_DIR": str(spool_dir)}
    patient = {**env, "COLLECTOR_EMIT_TIMEOUT": "20"}  # outlasts the outage by retrying
    hasty = {**env, "COLLECTOR_EMIT_TIMEOUT": "0.3"}  # gives up early and spools
    daemon = start_collector(url, sqlite_url, queue)
    client = redis.Redis.from_url(url)
    wait_until(lambda: consumers(client, queue) == {b"c1"}, 30, "the collector to read")
    client.close()
    producers = [
        producer(url, queue, "patient", EACH, pause=0.004, env=patient),
        producer(url, queue, "hasty", EACH, pause=0.004, env=hasty),
    ]
    wait_until(lambda: len(stored_ids(sqlite_url)) > 0, 30, "the first rows")
    redis_server.stop(signal.SIGKILL)
    time.sleep(2.0)
    redis_server.start()
    try:
        for proc in producers:
            assert proc.stop(None, timeout=90) == 0, proc.err
        returned = {line for proc in producers for line in proc.out.split()}
        expected = {f"{who}-{i}" for who in ("patient", "hasty") for i in range(EACH)}
        assert returned == expected
        assert "spooling records" in producers[1].err
        assert "spooling records" not in producers[0].err
        wait_for_rows(sqlite_url, expected, timeout=90)
        client = redis.Redis.from_url(url)
        wait_until(lambda: drained(client, queue), 30, "the stream to be drained")
        client.close()
        assert Spool(spool_dir).files() == []
    finally:
        assert daemon.stop() == 0, daemon.err


HOLD_UNTIL_TOLD = """
import sys
from workers import Emitter
emitter = Emitter(sys.argv[1], "q", emit_timeout=0.2)
print(*emitter.emit_many([{"x": i} for i in range(5)]), flush=True)
sys.stdin.readline()
"""


def spooled_ids(spool_dir) -> list[str]:
    return [
        rec.id
        for path in Spool(spool_dir).files()
        for _, payload in parse(path.read_bytes())[0]
        for rec in decode_records(payload)
    ]


def test_atexit_resends_the_spool_once_redis_is_back(redis_server, tmp_path) -> None:
    spool_dir = tmp_path / "spool"
    redis_server.stop()
    env = {**os.environ, "COLLECTOR_SPOOL_DIR": str(spool_dir)}
    job = python(HOLD_UNTIL_TOLD, redis_server.url(), env=env, stdin=-1)
    wait_until(lambda: len(spooled_ids(spool_dir)) == 5, 30, "five spooled records")
    redis_server.start()
    job.stdin.write(b"go\n")  # type: ignore[union-attr]
    job.stdin.close()  # type: ignore[union-attr]
    assert job.stop(None) == 0, job.err
    client = redis.Redis.from_url(redis_server.url())
    stored = [r.id for _, f in client.xrange("q") for r in decode_records(f[b"m"])]
    client.close()
    assert sorted(stored) == sorted(job.out.split())
    assert Spool(spool_dir).files() == []


def test_spool_left_at_exit_is_sent_by_collector_spool_flush(redis_server, tmp_path) -> None:
    spool_dir = tmp_path / "spool"
    redis_server.stop()
    env = {**os.environ, "COLLECTOR_SPOOL_DIR": str(spool_dir)}
    job = python(HOLD_UNTIL_TOLD, redis_server.url(), env=env, stdin=-1)
    job.stdin.close()  # type: ignore[union-attr]
    assert job.stop(None) == 0, job.err
    assert "records stay in" in job.err
    ids = job.out.split()
    assert sorted(spooled_ids(spool_dir)) == sorted(ids)
    (path,) = Spool(spool_dir).files()
    with open(path, "ab") as torn:
        torn.write(b"RCS1\x00\x00\x01")  # a write cut short by a crash
    redis_server.start()
    flush = collector("spool", "flush", str(spool_dir), "--redis-url", redis_server.url())
    assert flush.stop(None) == 0, flush.err
    assert flush.out.strip() == (
        f"sent 5 records from 1 file(s) in {spool_dir} to {redis_server.url()}, "
        f"1 damaged span(s) kept in {path}.damaged"
    )
    client = redis.Redis.from_url(redis_server.url())
    assert sorted(r.id for _, f in client.xrange("q") for r in decode_records(f[b"m"])) == sorted(
        ids
    )
    client.close()
    assert Spool(spool_dir).files() == []
