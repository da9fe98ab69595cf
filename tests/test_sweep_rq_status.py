"""Queued vs running for a sweep on a real RQ queue on the machine's Redis, as ``collector sweep
status`` (text and JSON) and the status page count them: one job started by a burst worker and
held there by the test, the others waiting on the queue, then all done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.registry import StartedJobRegistry
from starlette.testclient import TestClient

from collector.web.app import create_app
from tests.daskcluster import collect_until
from tests.helpers import REAL_REDIS_URL, collector

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parent.parent
JOBS = 5


@pytest.fixture
def rq_name(real_redis: redis.Redis, queue: str) -> Iterator[str]:
    """An RQ queue of this test's own; afterwards the rq:* keys naming it or its jobs go."""
    name = queue.replace(":", "-") + "-rq"
    yield name
    ids = {j.decode() for j in real_redis.lrange(f"rq:queue:{name}", 0, -1)}
    for registry in ("finished", "failed", "started", "wip", "deferred", "scheduled"):
        ids |= {m.decode().split(":")[0] for m in real_redis.zrange(f"rq:{registry}:{name}", 0, -1)}
    ours = [key for key in real_redis.scan_iter(match="rq:*", count=1000) if _ours(key, name, ids)]
    if ours:
        real_redis.delete(*ours)
    real_redis.srem("rq:queues", f"rq:queue:{name}")


def _ours(key: bytes, name: str, ids: set[str]) -> bool:
    """``rq:<kind>:NAME`` (the queue, its registries) or ``rq:<kind>:JOB_ID[:...]`` (a job)."""
    parts = key.decode().split(":")
    return name in parts or (len(parts) > 2 and parts[2] in ids)


def counts(db: str) -> dict:
    found = json.loads(ok("sweep", "status", "ij", "--json", "--db-url", db))
    return {k: found[k] for k in ("done", "failed", "queued", "running", "missing")}


def ok(*args: str) -> str:
    proc = collector(*args, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout} s")
        time.sleep(0.1)


def test_one_started_job_is_running_and_the_waiting_ones_are_queued(
    redis_env, real_redis, rq_name
) -> None:
    db, queue = redis_env.db_url, redis_env.queue
    ok("sweep", "submit", "tests.sweep_jobs.held", "--sweep", "ij", "--table", "ij",
       "--grid", f"I=0:{JOBS - 1}:1", "--grid", "J=1", "--rq-queue", rq_name,
       "--db-url", db)  # fmt: skip
    assert counts(db) == {"done": 0, "failed": 0, "queued": JOBS, "running": 0, "missing": 0}
    env = {**os.environ, "COLLECTOR_REDIS_URL": REAL_REDIS_URL, "COLLECTOR_QUEUE": queue}
    cmd = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", REAL_REDIS_URL,
           "--name", f"{rq_name}-worker", rq_name]  # fmt: skip
    worker = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)  # fmt: skip
    try:
        started = StartedJobRegistry(queue=Queue(rq_name, connection=real_redis))
        wait_for(lambda: started.count == 1, "a started job")
        expected = {"done": 0, "failed": 0, "queued": JOBS - 1, "running": 1, "missing": 0}
        assert counts(db) == expected
        text = ok("sweep", "status", "ij", "--db-url", db).splitlines()[1:6]
        assert text == ["  done     0", "  failed   0", "  queued   4", "  running  1",
                        "  missing  0"]  # fmt: skip
        app = create_app(redis_env.redis_url, db, queue)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            (shown,) = client.get("/api/sweeps").json()
        assert {k: shown[k] for k in expected} == expected
        assert (shown["running_known"], shown["jobs_from"]) == (True, "rq")
        assert started.count == 1  # every count above saw the same job held
        real_redis.rpush(f"{queue}:release", *range(JOBS))
        _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert collect_until(redis_env, "ij", JOBS) == JOBS
    assert counts(db) == {"done": JOBS, "failed": 0, "queued": 0, "running": 0, "missing": 0}
