"""Queued vs running for a sweep on a real RQ queue on the machine's Redis, as ``collector sweep
status`` (text and JSON) and the status page count them: one job started by a burst worker and
held there by the test, the others waiting on the queue, then all done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rq import Queue
from rq.registry import StartedJobRegistry
from starlette.testclient import TestClient

from collector.web.app import create_app
from tests.daskcluster import collect_until
from tests.helpers import REAL_REDIS_URL, collector, wait_until
from tests.test_rq import rq_queue  # noqa: F401 - a fixture

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parent.parent
JOBS = 5


def counts(db: str) -> dict:
    found = json.loads(ok("sweep", "status", "ij", "--json", "--db-url", db))
    return {k: found[k] for k in ("done", "failed", "queued", "running", "missing")}


def ok(*args: str) -> str:
    proc = collector(*args, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_one_started_job_is_running_and_the_waiting_ones_are_queued(
    redis_env,
    real_redis,
    rq_queue,  # noqa: F811 - the fixture imported above
) -> None:
    db, queue = redis_env.db_url, redis_env.queue
    ok("sweep", "submit", "tests.sweep_jobs.held", "--sweep", "ij", "--table", "ij",
       "--grid", f"I=0:{JOBS - 1}:1", "--grid", "J=1", "--rq-queue", rq_queue,
       "--db-url", db)  # fmt: skip
    assert counts(db) == {"done": 0, "failed": 0, "queued": JOBS, "running": 0, "missing": 0}
    env = {**os.environ, "COLLECTOR_REDIS_URL": REAL_REDIS_URL, "COLLECTOR_QUEUE": queue}
    cmd = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", REAL_REDIS_URL,
           "--name", f"{rq_queue}-worker", rq_queue]  # fmt: skip
    worker = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)  # fmt: skip
    try:
        started = StartedJobRegistry(queue=Queue(rq_queue, connection=real_redis))
        wait_until(lambda: started.count == 1, 60, what="a started job")
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
