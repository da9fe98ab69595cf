"""Sweeps on a real Dask cluster: ``collector sweep submit --dask`` by address and by scheduler
file with the submitting client gone, a worker SIGKILLed mid-sweep and the sweep completed by
``sweep missing --format dask``, and the command's one-line errors."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import dask
import pytest
import sqlalchemy as sa
from distributed import Client

from collector.errors import RET_CONFIG, RET_SCHEDULER
from collector.sweeps import daskjobs, ledger
from tests.daskcluster import collect_until, local_cluster
from tests.helpers import collector, run_collector, typed_rows, wait_until
from workers import Emitter

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(300)]
GRID = ["--grid", "I=0:4:1", "--grid", "J=1,2,4"]  # 15 points


def ok(*args: str) -> str:
    proc = collector(*args, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def status(db_url: str, *extra: str) -> dict:
    return json.loads(ok("sweep", "status", "ij", "--json", "--db-url", db_url, *extra))


@pytest.mark.parametrize("by", ["address", "scheduler file"])
def test_submit_to_dask_completes_after_the_client_is_gone(redis_env, tmp_path, by) -> None:
    scheduler_file = str(tmp_path / "scheduler.json")
    db = redis_env.db_url
    with local_cluster(scheduler_file=scheduler_file) as cluster:
        where = ["--dask", cluster.scheduler_address]
        if by == "scheduler file":
            where = ["--scheduler-file", scheduler_file]
        out = ok("sweep", "submit", "tests.dask_jobs.op", "--sweep", "ij", "--table", "ij",
                 *GRID, "--replicates", "2", *where, "--db-url", db)  # fmt: skip
        # the command has ended, its client with it: the cluster runs the tasks on its own
        assert "submitted 30 of 30 points of sweep 'ij' to Dask at" in out
        assert collect_until(redis_env, "ij", 30) == 30
        counts = status(db, *where)
    assert (counts["done"], counts["running"], counts["missing"]) == (30, 0, 0)
    stored = typed_rows(db, "ij")
    assert len(stored) == 30
    engine = sa.create_engine(db)
    by_id = {row.record_id: row for row in ledger.point_rows(engine, "ij")}
    engine.dispose()
    for row in stored:
        point = by_id[row["_id"]]
        assert row["_job"] == f"ij-{point.idx}"  # the task key: sweep and index
        assert (row["I"], row["J"], row["replicate"]) == (
            point.params["I"], point.params["J"], point.replicate,
        )  # fmt: skip
        assert row["K"] == row["I"] * row["J"] + row["replicate"] / 10


def test_a_worker_killed_mid_sweep_leaves_exactly_its_points_missing_until_resubmitted(
    redis_env, real_redis, queue
) -> None:
    db, total = redis_env.db_url, 300
    # no retry of a task whose worker died: its point stays without a row, as with a cluster
    # that gave up on it, so status and resubmission have something to find
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        local_cluster() as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        where = ["--dask", cluster.scheduler_address]
        victim = next(iter(client.run(os.getpid).values()))
        ok("sweep", "submit", "tests.dask_jobs.slow_op", "--sweep", "ij", "--table", "ij",
           "--grid", "I=0:29:1", "--grid", "J=0:9:1", *where, "--db-url", db)  # fmt: skip
        wait_until(lambda: real_redis.xlen(queue) >= 40, 120, what="40 results")
        os.kill(victim, signal.SIGKILL)  # mid-sweep: the nanny starts a new worker process
        engine = sa.create_engine(db)
        sweep = ledger.load(engine, "ij")
        keys = [daskjobs.task_key(sweep.name, idx) for idx in range(total)]

        def idle() -> bool:
            states = daskjobs.task_states(cluster.scheduler_address, keys, 10).values()
            return not daskjobs.IN_FLIGHT.intersection(states)

        wait_until(idle, 120, what="an idle cluster")
        run_collector(redis_env)
        have = {row["_job"] for row in typed_rows(db, "ij")}
        counts = status(db, *where)
        assert counts["missing"] == total - len(have) > 0  # exactly the points without a row
        assert (counts["done"], counts["running"], counts["failed"]) == (len(have), 0, 0)
        out = ok("sweep", "missing", "ij", "--format", "dask", *where, "--db-url", db)
        assert f"submitted {total - len(have)} points of sweep 'ij' to Dask" in out
        assert collect_until(redis_env, "ij", total) == total
        counts = status(db, *where)
        engine.dispose()
        wait_until(lambda: len(client.nthreads()) == 2, 120, what="the restarted worker")
    assert (counts["done"], counts["missing"]) == (total, 0)
    stored = typed_rows(db, "ij")
    assert sorted(row["_job"] for row in stored) == sorted(f"ij-{i}" for i in range(total))
    assert len({row["_id"] for row in stored}) == total  # no point stored twice


def test_dask_flags_errors_are_one_line(sqlite_url, tmp_path) -> None:
    sqlite_url_file = Path(sqlite_url.removeprefix("sqlite:///"))
    sqlite_url_file.touch()
    listed, numbered = tmp_path / "listed.json", tmp_path / "numbered.json"
    listed.write_text("[1]")
    numbered.write_text('{"address": 5}')
    cases = [
        (["sweep", "submit", "m.f", "--grid", "I=1", "--dask", "tcp://127.0.0.1:1",
          "--scheduler-file", "s.json"], RET_CONFIG, "not both"),
        (["sweep", "submit", "m.f", "--grid", "I=1", "--scheduler-file", str(tmp_path / "no")],
         RET_CONFIG, "no Dask scheduler file"),
        (["sweep", "missing", "ij", "--format", "dask", "--db-url", sqlite_url], RET_CONFIG,
         "--format dask needs --dask ADDRESS or --scheduler-file FILE"),
        (["sweep", "status", "ij", "--dask", "tcp://127.0.0.1:1", "--scheduler-file", "s.json"],
         RET_CONFIG, "not both"),
        (["sweep", "status", "ij", "--scheduler-file", str(tmp_path / "no")], RET_CONFIG,
         "no Dask scheduler file"),
        (["sweep", "status", "ij", "--scheduler-file", str(listed)], RET_CONFIG,
         f"cannot read Dask scheduler file {listed}"),
        (["sweep", "status", "ij", "--scheduler-file", str(numbered)], RET_CONFIG,
         f"Dask scheduler file {numbered} names no address"),
    ]  # fmt: skip
    for args, code, text in cases:
        proc = collector(*args)
        assert proc.returncode == code, (args, proc.stderr)
        assert text in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr
    proc = collector(
        "sweep",
        "submit",
        "m.f",
        "--grid",
        "I=1",
        "--dask",
        "tcp://127.0.0.1:9",
        "--dask-timeout",
        "0",
    )
    assert proc.returncode == RET_CONFIG  # click's usage error, ending in its one Error line
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for '--dask-timeout': 0.0 is not in the range x>0."
    )
    proc = collector("sweep", "submit", "m.f", "--grid", "I=1", "--dask", "tcp://127.0.0.1:9",
                     "--dask-timeout", "2", "--db-url", sqlite_url, timeout=120)  # fmt: skip
    assert proc.returncode == RET_SCHEDULER, proc.stderr
    assert proc.stderr.startswith("Error: cannot reach Dask at tcp://127.0.0.1:9")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_on_dask_moves_the_failed_rows_as_it_resubmits(redis_env, real_redis) -> None:
    db = redis_env.db_url
    ok("sweep", "declare", "ij", "--table", "ij", *GRID, "--db-url", db)
    engine = sa.create_engine(db)
    points = ledger.point_rows(engine, "ij")
    engine.dispose()
    emitter = Emitter(queue=redis_env.queue, client=real_redis)
    for row in points[:10]:  # 5 results, 5 failures, 5 points never run
        failed = {"_error": "RuntimeError: did not converge"} if row.idx % 2 else {"K": -1.0}
        emitter.emit({**row.params, **failed}, table="ij", key=row.record_id)
    run_collector(redis_env)
    with local_cluster() as cluster:
        where = ["--dask", cluster.scheduler_address]
        assert (status(db, *where)["failed"], status(db, *where)["missing"]) == (5, 5)
        proc = collector("sweep", "missing", "ij", "--format", "dask", "--func",
                         "tests.dask_jobs.op", *where, "--db-url", db, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "moved 5 failed rows to _sweep_failures" in proc.stderr
        assert "submitted 10 points of sweep 'ij' to Dask" in proc.stdout
        assert collect_until(redis_env, "ij", 15) == 15
        counts = status(db, *where)
    assert (counts["done"], counts["failed"], counts["missing"]) == (15, 0, 0)
    engine = sa.create_engine(db)
    with engine.connect() as conn:
        moved = conn.execute(sa.text("SELECT idx, error FROM _sweep_failures ORDER BY idx")).all()
    engine.dispose()
    assert moved == [(idx, "RuntimeError: did not converge") for idx in (1, 3, 5, 7, 9)]
