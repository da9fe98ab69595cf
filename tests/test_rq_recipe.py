"""The RQ recipe ``collector sweep submit`` prints works when pasted: ``rq worker -c
workers.rqconfig QUEUE`` finds the Redis the jobs emit to (no URL, no password on its command
line) and runs every job into one row."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from collector.settings import Settings
from tests.helpers import REAL_REDIS_URL
from tests.test_rq import collect_until, rq_queue  # noqa: F401 - rq_queue is a fixture

HERE = Path(__file__).resolve().parent
RECIPE = re.compile(r"^run workers:  (rq worker .*) \[--burst\]$", re.M)


@pytest.mark.redis
@pytest.mark.slow
def test_the_printed_rq_worker_line_runs_the_sweep(
    real_redis: redis.Redis,
    rq_queue: str,  # noqa: F811 - the fixture imported above
    queue: str,
    settings: Settings,
) -> None:
    env = {**os.environ, "COLLECTOR_REDIS_URL": REAL_REDIS_URL, "COLLECTOR_QUEUE": queue}
    grid = ["--grid", "I=0:1:0.5", "--grid", "J=1,2"]
    submit = ["sweep", "submit", "rq_jobs.point", "--rq-queue", rq_queue, *grid]
    done = subprocess.run(
        [sys.executable, "-m", "collector", *submit, "--db-url", settings.db_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [line] = RECIPE.findall(done.stdout)
    assert line == f"rq worker -c workers.rqconfig {rq_queue}"

    argv = shlex.split(line)
    rq = str(Path(sys.executable).with_name("rq"))
    worker = subprocess.run(
        [rq, *argv[1:], "--burst", "--path", str(HERE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    ours = replace(settings, redis_url=REAL_REDIS_URL)
    engine = sa.create_engine(ours.db_url)
    try:
        assert collect_until(ours, engine, want=6, timeout=60) == 6
    finally:
        engine.dispose()
