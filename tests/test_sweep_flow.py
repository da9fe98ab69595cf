"""A sweep from declaration to completion: 100 points x 2 replicates, 150 run (some twice under
different job ids), 5 of them failed; status, missing as Slurm ranges, CSV and RQ, and a burst
RQ worker that completes it."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from click.testing import CliRunner

from collector.cli import main
from collector.daemon import Collector
from collector.errors import RET_FAILED
from collector.settings import Settings
from tests.helpers import COLLECTOR, drain
from workers import Emitter
from workers.keys import point_key

TESTS = Path(__file__).parent
FAILED = set(range(3, 8))
MISSING = {12, *range(40, 49), *range(160, 200)}
RERUN = "--array=3-7,12,40-48,160-199"
TWICE = set(range(100, 120))  # run a second time, under another job id


def point_of(idx: int) -> dict[str, float | int]:
    """The grid I=0:9:1 x J=0:0.9:0.1 with 2 replicates: idx = point * 2 + replicate."""
    point, replicate = divmod(idx, 2)
    i, j = divmod(point, 10)
    return {"I": i, "J": round(j * 0.1, 12), "replicate": replicate}


def invoke(*args: str, ok: bool = True) -> tuple[str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result.stdout, result.stderr


def emit_points(
    emitter: Emitter, indexes: list[int], job: str, monkeypatch, fail: bool = True
) -> None:
    """What the jobs would emit: a result, or the inputs with ``_error`` for the failed ones."""
    monkeypatch.setenv("SLURM_JOB_ID", job)
    for idx in indexes:
        inputs = point_of(idx)
        data = (
            {**inputs, "_error": "ValueError: boom"}
            if fail and idx in FAILED
            else {**inputs, "K": inputs["I"] * inputs["J"] + inputs["replicate"] / 10}
        )
        emitter.emit(data, table="ij", key=point_key("ij", inputs))
    monkeypatch.delenv("SLURM_JOB_ID")


def run_150(emitter: Emitter, collector: Collector, monkeypatch) -> None:
    ran = [idx for idx in range(200) if idx not in MISSING]
    assert len(ran) == 150
    emit_points(emitter, ran, "1001", monkeypatch)
    drain(collector)  # the repeats arrive in a later batch: the database drops them
    emit_points(emitter, sorted(TWICE), "1002", monkeypatch)
    drain(collector)


def counts(db_url: str, *args: str) -> dict:
    out, _ = invoke("sweep", "status", "ij", "--json", "--db-url", db_url, *args)
    return json.loads(out)


def tables(db_url: str) -> tuple[list, list]:
    """Every row of the results table and of ``_sweep_failures``, in a stable order."""
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        results = conn.execute(sa.text("SELECT * FROM ij ORDER BY _id")).all()
        failures = conn.execute(sa.text("SELECT * FROM _sweep_failures ORDER BY idx")).all()
    engine.dispose()
    return results, failures


def table_ids(db_url: str) -> list[str]:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        ids = list(conn.scalars(sa.text("SELECT _id FROM ij")))
    engine.dispose()
    return ids


DECLARE = ["sweep", "declare", "ij", "--table", "ij", "--grid", "I=0:9:1", "--grid",
           "J=0:0.9:0.1", "--replicates", "2"]  # fmt: skip


@pytest.fixture
def fake_cli_redis(fake_redis, monkeypatch):
    """Every Redis the CLI opens is the test's fakeredis."""
    monkeypatch.setattr(redis.Redis, "from_url", classmethod(lambda cls, url, **kw: fake_redis))
    return fake_redis


@pytest.fixture
def collector(fake_cli_redis, settings) -> Iterator[Collector]:
    """A started collector on the fakeredis, closed afterwards."""
    daemon = Collector(settings, client=fake_cli_redis)
    daemon.start()
    yield daemon
    daemon.close()


def test_status_and_missing_count_each_point_once(
    fake_cli_redis, collector, settings, sqlite_url, monkeypatch
) -> None:
    invoke(*DECLARE, "--db-url", sqlite_url)
    emitter = Emitter(queue=settings.queue, client=fake_cli_redis)
    run_150(emitter, collector, monkeypatch)
    expected = {"total": 200, "done": 145, "failed": 5, "running": 0, "missing": 50}
    assert {k: counts(sqlite_url)[k] for k in expected} == expected
    ids = table_ids(sqlite_url)
    assert len(ids) == len(set(ids)) == 150

    before = tables(sqlite_url)
    out, err = invoke("sweep", "missing", "ij", "--format", "slurm", "--db-url", sqlite_url)
    assert out == RERUN + "\n"
    assert "5 failed rows stay in table 'ij'" in err
    out, _ = invoke("sweep", "missing", "ij", "--format", "csv", "--db-url", sqlite_url)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["index"]) for r in rows] == sorted(FAILED | MISSING)
    assert rows[0] == {"index": "3", "replicate": "1", "I": "0", "J": "0.1"}
    assert tables(sqlite_url) == before  # a report: nothing moved
    assert {k: counts(sqlite_url)[k] for k in expected} == expected

    out, err = invoke("sweep", "missing", "ij", "--format", "rq", "--func", "sweep_jobs.op",
                      "--rq-queue", "sweeptest", "--db-url", sqlite_url)  # fmt: skip
    assert "queued 55 points" in out
    assert "moved 5 failed rows to _sweep_failures" in err  # as they are resubmitted
    waiting = {"done": 145, "failed": 0, "queued": 55, "running": 0, "missing": 0}
    assert {k: counts(sqlite_url)[k] for k in waiting} == waiting  # no worker took one yet
    results, failures = tables(sqlite_url)
    assert len(results) == 145 and not any(r._error for r in results)
    assert sorted((f.idx, f.error, f.job) for f in failures) == [
        (idx, "ValueError: boom", "1001") for idx in sorted(FAILED)
    ]
    result = CliRunner().invoke(main, ["sweep", "missing", "ij", "--format", "slurm",
                                       "--db-url", sqlite_url])  # fmt: skip
    assert (result.exit_code, result.stdout) == (RET_FAILED, "")  # queued: not resubmitted
    assert "nothing to resubmit" in result.stderr


@pytest.mark.parametrize("fmt", ["slurm", "csv"])
def test_retire_failed_moves_the_failed_rows_of_a_report(
    fake_cli_redis, collector, settings, sqlite_url, monkeypatch, fmt
) -> None:
    invoke(*DECLARE, "--db-url", sqlite_url)
    run_150(Emitter(queue=settings.queue, client=fake_cli_redis), collector, monkeypatch)
    _, err = invoke("sweep", "missing", "ij", "--format", fmt, "--retire-failed",
                    "--db-url", sqlite_url)  # fmt: skip
    assert "moved 5 failed rows to _sweep_failures" in err
    after = {"done": 145, "failed": 0, "running": 0, "missing": 55}
    assert {k: counts(sqlite_url)[k] for k in after} == after
    assert sorted(f.idx for f in tables(sqlite_url)[1]) == sorted(FAILED)


def test_a_complete_sweep_has_nothing_to_resubmit(
    fake_cli_redis, collector, settings, sqlite_url, monkeypatch
) -> None:
    invoke(*DECLARE, "--db-url", sqlite_url)
    emitter = Emitter(queue=settings.queue, client=fake_cli_redis)
    emit_points(emitter, [i for i in range(200) if i not in FAILED], "1001", monkeypatch)
    drain(collector)
    out, _ = invoke("sweep", "missing", "ij", "--format", "slurm", "--db-url", sqlite_url)
    assert out == "--array=3-7\n"  # failed only
    emit_points(emitter, sorted(FAILED), "1002", monkeypatch, fail=False)
    drain(collector)  # a success replaces a stored failure: the sweep is complete
    assert counts(sqlite_url)["done"] == 200
    before = tables(sqlite_url)
    result = CliRunner().invoke(main, ["sweep", "missing", "ij", "--format", "slurm",
                                       "--db-url", sqlite_url])  # fmt: skip
    assert (result.exit_code, result.stdout) == (RET_FAILED, "")
    assert (
        result.stderr
        == "Error: nothing to resubmit: every point of sweep 'ij' is done, queued or running\n"
    )
    assert tables(sqlite_url) == before


def documented_lines() -> list[str]:
    """Every resubmit line README.md and docs/sweeps.md show, as a user pastes it."""
    found = []
    for page in (TESTS.parent / "README.md", TESTS.parent / "docs" / "sweeps.md"):
        for line in page.read_text().splitlines():
            if line.strip().startswith("args=$(collector sweep missing"):
                found.append(line.split("  #")[0].strip())
    assert len(found) == 3, found  # README's, and docs/sweeps.md's with and without --retire-failed
    return sorted(set(found))


@pytest.mark.redis
@pytest.mark.parametrize("line", documented_lines())
@pytest.mark.parametrize("complete", [True, False])
def test_the_resubmit_line_submits_only_an_array(
    fake_cli_redis, collector, settings, sqlite_url, monkeypatch, tmp_path, complete, line
) -> None:
    """Each documented line, in bash, with an ``sbatch`` that writes down its arguments."""
    from tests.helpers import REAL_REDIS_URL

    invoke(*DECLARE, "--db-url", sqlite_url)
    done = range(200) if complete else [i for i in range(200) if i not in MISSING]
    emit_points(Emitter(queue=settings.queue, client=fake_cli_redis), list(done), "9", monkeypatch,
                fail=False)  # fmt: skip
    drain(collector)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text('#!/bin/sh\necho "$@" >> "$SBATCH_LOG"\n')
    sbatch.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(COLLECTOR).parent}:{os.environ['PATH']}",
           "SBATCH_LOG": str(tmp_path / "sbatch.log"), "COLLECTOR_REDIS_URL": REAL_REDIS_URL,
           "COLLECTOR_QUEUE": settings.queue, "COLLECTOR_DB_URL": sqlite_url}  # fmt: skip
    shell = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    log = tmp_path / "sbatch.log"
    if complete:
        assert shell.returncode == RET_FAILED and "nothing to resubmit" in shell.stderr
        assert not log.exists()  # no plain job submitted
    else:
        assert shell.returncode == 0, shell.stderr
        assert log.read_text() == "--array=12,40-48,160-199 ij.sh\n"


def test_rows_carry_scheduler_metadata(
    fake_cli_redis, collector, settings, sqlite_url, monkeypatch
) -> None:
    invoke(*DECLARE, "--db-url", sqlite_url)
    emitter = Emitter(queue=settings.queue, client=fake_cli_redis)
    run_150(emitter, collector, monkeypatch)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT _job, _host, _elapsed, _maxrss, _error FROM ij"))
        rows = rows.all()
    engine.dispose()
    assert {r._job for r in rows} == {"1001"}  # the repeats under job 1002 added no row
    assert all(r._host and r._elapsed > 0 and r._maxrss > 1 << 20 for r in rows)
    assert sum(r._error is not None for r in rows) == 5


@pytest.fixture
def rq_name(real_redis) -> Iterator[str]:
    """A private RQ queue; its keys, jobs and workers are deleted afterwards."""
    name = f"test-sweep-{uuid.uuid4().hex[:10]}"
    yield name
    keys = set(real_redis.scan_iter(match=f"rq:*{name}*"))
    job_ids = real_redis.lrange(f"rq:queue:{name}", 0, -1)
    for registry in ("wip", "finished", "failed", "scheduled", "deferred", "canceled"):
        job_ids += real_redis.zrange(f"rq:{registry}:{name}", 0, -1)
    for job_id in {j.decode().split(":")[0] for j in job_ids}:
        keys.update(real_redis.scan_iter(match=f"rq:*{job_id}*"))
    workers = [w for w in real_redis.smembers("rq:workers") if name.encode() in w]
    if workers:
        real_redis.srem("rq:workers", *workers)
    real_redis.srem("rq:queues", f"rq:queue:{name}")
    if keys:
        real_redis.delete(*keys)


@pytest.mark.redis
@pytest.mark.slow
def test_rerun_through_rq_completes_the_sweep(
    real_redis, rq_name, queue, sqlite_url, tmp_path, monkeypatch
) -> None:
    from tests.helpers import REAL_REDIS_URL

    monkeypatch.setenv("COLLECTOR_REDIS_URL", REAL_REDIS_URL)
    monkeypatch.setenv("COLLECTOR_QUEUE", queue)
    invoke(*DECLARE, "--db-url", sqlite_url)
    settings = Settings(redis_url=REAL_REDIS_URL, db_url=sqlite_url, queue=queue, max_wait=0.05,
                        consumer="test")  # fmt: skip
    collector = Collector(settings, client=real_redis)
    collector.start()
    run_150(Emitter(queue=queue, client=real_redis), collector, monkeypatch)
    out, _ = invoke("sweep", "missing", "ij", "--format", "slurm", "--db-url", sqlite_url)
    assert out == RERUN + "\n"

    out, _ = invoke("sweep", "missing", "ij", "--format", "rq", "--func", "sweep_jobs.op",
                    "--rq-queue", rq_name, "--db-url", sqlite_url)  # fmt: skip
    assert "queued 55 points" in out
    assert (counts(sqlite_url)["queued"], counts(sqlite_url)["running"]) == (55, 0)
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    worker = subprocess.run(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", REAL_REDIS_URL,
         "--name", f"{rq_name}-worker", rq_name],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr[-2000:]
    drain(collector)
    collector.close()

    final = counts(sqlite_url)
    assert {k: final[k] for k in ("done", "failed", "running", "missing")} == {
        "done": 200,
        "failed": 0,
        "running": 0,
        "missing": 0,
    }
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT I, J, replicate, K, _error, _job FROM ij")).all()
        failures = conn.execute(sa.text("SELECT idx, error FROM _sweep_failures")).all()
    engine.dispose()
    assert len(rows) == len({(r.I, r.J, r.replicate) for r in rows}) == 200
    reruns = {(r.I, r.J, r.replicate): r for r in rows}
    for idx in FAILED:  # the failed points now hold the rerun's result, from an RQ job
        p = point_of(idx)
        row = reruns[(p["I"], p["J"], p["replicate"])]
        assert row._error is None
        assert pytest.approx(p["I"] * p["J"] + p["replicate"] / 10) == row.K
        assert row._job not in ("1001", "1002")
    assert sorted(failures) == [(idx, "ValueError: boom") for idx in sorted(FAILED)]
