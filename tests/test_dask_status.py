"""Queued vs running for a sweep on a real Dask cluster, as ``collector sweep status`` and the
status page count them: 8 threads busy with tasks that wait for the test, the rest queued behind
them, then all done; the scheduler gone is "unknown" at once, never a traceback or a hang."""

from __future__ import annotations

import json
import os
import time

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from collector.sweeps import daskjobs
from collector.web.app import create_app
from tests.daskcluster import THREADS, WORKERS, collect_until, local_cluster
from tests.helpers import collector, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(300)]
POINTS = 12  # I=0..5 x J=1,2: 8 run at once on 2 x 4 threads, 4 wait
BUSY = WORKERS * THREADS


def ok(*args: str) -> str:
    proc = collector(*args, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def counts(db: str, *extra: str) -> dict:
    """``sweep status --json``'s counts, with time for a loaded machine's scheduler to answer."""
    args = ("--json", "--dask-timeout", "30", "--db-url", db, *extra)
    found = json.loads(ok("sweep", "status", "ij", *args))
    return {k: found[k] for k in ("done", "failed", "queued", "running", "missing")}


def page_counts(redis_env, *, asked: bool = True) -> dict:
    """The sweep as /api/sweeps shows it; ``asked``: refreshed (10 times at most) until the
    scheduler answered in time (the machine running the tests may be loaded)."""
    app = create_app(redis_env.redis_url, redis_env.db_url, redis_env.queue)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for _ in range(10):
            (sweep,) = client.get("/api/sweeps").json()
            if sweep["running_known"] or not asked:
                break
    return sweep


def test_tasks_waiting_behind_busy_threads_are_queued_not_running(redis_env, real_redis) -> None:
    db, queue = redis_env.db_url, redis_env.queue
    with local_cluster() as cluster:
        ok("sweep", "submit", "tests.dask_jobs.held", "--sweep", "ij", "--table", "ij",
           "--grid", "I=0:5:1", "--grid", "J=1,2", "--dask", cluster.scheduler_address,
           "--db-url", db)  # fmt: skip
        started = daskjobs.started_key(queue, "ij")
        wait_until(lambda: real_redis.hlen(started) == BUSY, 120, what=f"{BUSY} tasks started")
        time.sleep(0.5)  # a ninth task would have started by now if it could
        assert real_redis.hlen(started) == BUSY
        # no --dask: the scheduler noted at submission is asked
        expected = {"done": 0, "failed": 0, "queued": POINTS - BUSY, "running": BUSY, "missing": 0}
        assert counts(db) == expected
        shown = page_counts(redis_env)
        assert {k: shown[k] for k in expected} == expected
        assert (shown["running_known"], shown["jobs_from"]) == (True, "dask")
        text = ok("sweep", "status", "ij", "--dask-timeout", "30", "--db-url", db)
        text = text.splitlines()[1:6]
        assert text == ["  done     0", "  failed   0", "  queued   4", "  running  8",
                        "  missing  0"]  # fmt: skip
        assert real_redis.hlen(started) == BUSY  # every count above saw the same 8 held

        real_redis.rpush(f"{queue}:release", *range(POINTS))  # let every task finish
        assert collect_until(redis_env, "ij", POINTS) == POINTS
        wait_until(lambda: real_redis.hlen(started) == 0, 120, what="every start note removed")
        done = {"done": POINTS, "failed": 0, "queued": 0, "running": 0, "missing": 0}
        assert counts(db, "--dask", cluster.scheduler_address) == done
        address = cluster.scheduler_address

    # the scheduler is gone: unknown at once, with why, never a traceback
    engine = sa.create_engine(db)
    with engine.begin() as conn:  # forget the rows: the points are not done any more
        conn.exec_driver_sql('DELETE FROM "ij"')
    engine.dispose()
    proc = collector("sweep", "status", "ij", "--db-url", db)  # the default timeout: 2 s
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[3:5] == ["  queued   ?", "  running  ?"]
    # distributed's own words when the connection times out, ours when the answer does
    why = {f"Timed out trying to connect to {address} after 2 s", "no answer within 2 s"}
    note = f"note: queued and running points unknown: cannot reach Dask at {address}: "
    assert proc.stderr.startswith(note) and proc.stderr.endswith("\n")
    assert proc.stderr.removeprefix(note).removesuffix("\n") in why
    shown = page_counts(redis_env, asked=False)
    assert (shown["running_known"], shown["jobs_from"], shown["missing"]) == (False, "dask", 12)
    assert shown["jobs_error"].removeprefix(f"cannot reach Dask at {address}: ") in why


@pytest.fixture
def task_thread(monkeypatch):
    """This thread as a Dask worker's task thread sees it: the task key in thread_state."""
    from distributed.worker import thread_state

    monkeypatch.setattr(thread_state, "key", "ij-3", raising=False)


def test_a_task_notes_its_start_while_it_runs_and_removes_it(redis_env, real_redis, task_thread):
    from workers.daskworker import STARTED_TTL, run_point
    from workers.jobinfo import host_name

    started = daskjobs.started_key(redis_env.queue, "ij")
    seen: list[tuple[dict[str, str], int]] = []
    import tests.dask_jobs as jobs

    real = jobs.noted_while_running
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jobs, "noted_while_running", lambda: seen.append(real(started)))
        run_point("tests.dask_jobs.noted_while_running", {}, started)
    [(notes, ttl)] = seen
    [(key, value)] = notes.items()
    host, pid, when = value.split()
    assert (key, host, int(pid)) == ("ij-3", host_name(), os.getpid())
    assert abs(float(when) - time.time()) < 60
    assert 0 < ttl <= STARTED_TTL
    assert real_redis.hlen(started) == 0  # removed when the task ended


@pytest.mark.parametrize("redis_url", ["redis://127.0.0.1:1/0", None])  # None: serve not up
def test_a_task_runs_when_its_start_cannot_be_noted(
    monkeypatch, tmp_path, task_thread, caplog, redis_url
) -> None:
    from workers.daskworker import run_point

    if redis_url is None:
        (tmp_path / "config").mkdir()  # a config directory without serve's connection file
    else:
        monkeypatch.setenv("COLLECTOR_REDIS_URL", redis_url)
    ran: list[int] = []
    import tests.dask_jobs as jobs

    monkeypatch.setattr(jobs, "noted_while_running", lambda: ran.append(1))
    run_point("tests.dask_jobs.noted_while_running", {}, "q:sweep:ij:started")
    assert ran == [1]
    assert "cannot note the start of task ij-3 in Redis" in caplog.text
