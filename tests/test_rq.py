"""Real RQ end to end: a sweep of ``@collect`` jobs run by two ``rq worker --burst`` processes on
the machine's Redis, drained by the collector into SQLite: one row per job, keyed by its id."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from rq import Queue
from rq_jobs import TABLE, broken

from collector.cli.points import grid_points
from collector.daemon import Collector
from collector.settings import Settings
from collector.sweeps.submit import enqueue_points
from tests.helpers import REAL_REDIS_URL

HERE = Path(__file__).resolve().parent


@pytest.fixture
def rq_queue(real_redis: redis.Redis, queue: str) -> Iterator[str]:
    """An RQ queue name of this test's own; afterwards every rq:* key naming it or one of its
    jobs is deleted (the queue, its registries, the jobs)."""
    name = queue.replace(":", "-") + "-rq"
    yield name
    job_ids = {j.decode() for j in real_redis.lrange(f"rq:queue:{name}", 0, -1)}
    for registry in ("finished", "failed", "started", "wip", "deferred", "scheduled", "canceled"):
        # a started registry's members are JOB_ID:EXECUTION_ID (RQ 2)
        members = real_redis.zrange(f"rq:{registry}:{name}", 0, -1)
        job_ids |= {m.decode().split(":")[0] for m in members}
    ours = [
        key
        for key in real_redis.scan_iter(match="rq:*", count=1000)
        if _is_ours(key, name, job_ids)
    ]
    if ours:
        real_redis.delete(*ours)
    real_redis.srem("rq:queues", f"rq:queue:{name}")


def _is_ours(key: bytes, name: str, job_ids: set[str]) -> bool:
    """``rq:<kind>:NAME`` (queue, registries) or ``rq:<kind>:JOB_ID[:...]`` (job, results)."""
    parts = key.decode().split(":")
    return name in parts or (len(parts) > 2 and parts[2] in job_ids)


def start_worker(rq_queue: str, queue: str, log: Path) -> subprocess.Popen[bytes]:
    """A plain (forking) ``rq worker --burst`` whose jobs emit to ``queue``."""
    env = {**os.environ, "COLLECTOR_REDIS_URL": REAL_REDIS_URL, "COLLECTOR_QUEUE": queue}
    rq = Path(sys.executable).with_name("rq")
    cmd = [str(rq), "worker", rq_queue, "--burst", "--url", REAL_REDIS_URL, "--path", str(HERE)]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def collect_until(settings: Settings, engine: sa.Engine, want: int, timeout: float) -> int:
    """Run the collector until the table holds ``want`` rows (or ``timeout``); the row count."""
    collector = Collector(settings)
    collector.start()
    deadline = time.monotonic() + timeout
    count = 0
    try:
        while count < want and time.monotonic() < deadline:
            collector.run_once()
            with engine.connect() as conn:
                if sa.inspect(conn).has_table(TABLE):
                    count = conn.scalar(sa.text(f"SELECT count(*) FROM {TABLE}"))  # noqa: S608
    finally:
        collector.close()
    return count


@pytest.mark.redis
@pytest.mark.slow
def test_a_sweep_through_rq_workers_is_one_row_per_job(
    real_redis, rq_queue, queue, settings, tmp_path
):
    settings = replace(settings, redis_url=REAL_REDIS_URL)
    points = grid_points(["I=0:0.95:0.05", "J=1:10:1"])
    assert len(points) == 200
    ids = enqueue_points("rq_jobs.point", points, connection=real_redis, queue=rq_queue)
    bad = Queue(rq_queue, connection=real_redis).enqueue(broken, I=0.5, J=3, result_ttl=0)

    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [start_worker(rq_queue, queue, log) for log in logs]
    engine = sa.create_engine(settings.db_url)
    try:
        count = collect_until(settings, engine, want=201, timeout=120)
        for proc, log in zip(workers, logs, strict=True):
            assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM {TABLE}")).mappings().all()  # noqa: S608
        engine.dispose()

    assert count == 201
    good = [r for r in rows if r["_error"] is None]
    failed = [r for r in rows if r["_error"] is not None]
    assert len(good) == 200
    assert sorted(r["_id"] for r in good) == sorted(ids)
    assert all(r["_job"] == r["_id"] for r in good)
    assert {(r["I"], r["J"]): r["K"] for r in good} == {
        (p["I"], p["J"]): p["I"] * p["J"] for p in points
    }
    assert [(r["_id"], r["_job"], r["I"], r["J"], r["_error"]) for r in failed] == [
        (bad.id, bad.id, 0.5, 3, "ValueError: bad input")
    ]
    assert bad.get_status(refresh=True) == "failed"
