"""Point states: done and failed from the results table, queued and running from RQ's queue
and registries (by the jobs' keyword arguments), on SQLite and PostgreSQL; the --watch bar."""

from __future__ import annotations

import threading
import time

import pytest
import redis
import sqlalchemy as sa
from click.testing import CliRunner
from rq import Queue
from rq.job import Job, JobStatus

from collector.cli import main
from collector.db import make_engine
from collector.store import Schema, Store
from collector.sweeps import ledger
from collector.sweeps.missing import prepare_rerun, retire_failed
from collector.sweeps.progress import active_jobs, progress, rq_progress, unstored
from collector.sweeps.submit import enqueue_points
from workers.keys import param_key
from workers.record import Record

POINTS = [{"I": i, "J": 0.5} for i in range(4)]


def result(i: int, error: str | None = None) -> Record:
    data = {"I": i, "J": 0.5, **({"_error": error} if error else {"K": i / 2})}
    return Record(param_key("t", POINTS[i], 0), "t", data, 1.0)


def start(client: redis.Redis, job_id: str, rq_queue: str, expires_in: float) -> None:
    """What a worker does when it takes a job: off the queue, into the started registry."""
    client.lrem(f"rq:queue:{rq_queue}", 0, job_id)
    client.zadd(f"rq:wip:{rq_queue}", {f"{job_id}:exec1": time.time() + expires_in})
    Job.fetch(job_id, connection=client).set_status(JobStatus.STARTED)


def test_queued_means_waiting_and_running_means_started_and_not_abandoned(
    fake_redis, sqlite_url
) -> None:
    engine = make_engine(sqlite_url)
    sweep, _ = ledger.declare(engine, "s", "t", POINTS)
    ids = enqueue_points("m.f", POINTS, connection=fake_redis, queue="q")
    Queue("q", connection=fake_redis).enqueue("m.other", 1, 2)  # positional: not a point
    Queue("q", connection=fake_redis).enqueue("m.other", I=1, replicate="x")  # not a point either
    start(fake_redis, ids[0], "q", expires_in=100)
    start(fake_redis, ids[1], "q", expires_in=-100)  # its worker died: abandoned
    fake_redis.hset(f"rq:job:{ids[3]}", "status", "finished")
    jobs = active_jobs(fake_redis, "q", "t")
    assert jobs == {param_key("t", POINTS[0], 0): "running", param_key("t", POINTS[2], 0): "queued"}

    assert progress(engine, sweep, jobs).states == {0: "running", 1: "missing", 2: "queued",
                                                    3: "missing"}  # fmt: skip
    assert Store(engine, Schema()).write([result(2)]) == []
    states = progress(engine, sweep, jobs).states
    assert states == {0: "running", 1: "missing", 2: "done", 3: "missing"}  # a row wins
    assert progress(engine, sweep, None).running_known is False
    engine.dispose()


def test_rq_progress_without_redis_is_unknown_running_or_raises_when_strict(sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    sweep, _ = ledger.declare(engine, "s", "t", POINTS)
    closed = redis.Redis(port=1, socket_connect_timeout=0.5)
    state = rq_progress(engine, sweep, closed, "q", strict=False)
    assert (state.running_known, state.count("missing")) == (False, 4)
    assert state.jobs_error is not None and "Connection refused" in state.jobs_error
    assert state.jobs_error.startswith("redis unavailable: ")
    with pytest.raises(redis.ConnectionError):
        rq_progress(engine, sweep, closed, "q", strict=True)
    never_submitted = rq_progress(engine, sweep, closed, None, strict=True)  # asks no Redis
    assert (never_submitted.running_known, never_submitted.jobs_error) == (True, None)
    assert unstored(closed, "q") is None
    engine.dispose()


def test_prepare_rerun_takes_missing_and_failed_and_retires_the_failed(sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    sweep, _ = ledger.declare(engine, "s", "t", POINTS)
    assert Store(engine, Schema()).write([result(0), result(1, "boom")]) == []
    state = progress(engine, sweep, {param_key("t", POINTS[3], 0): "running"})
    report = prepare_rerun(engine, state, retire=False)  # a report: nothing moves
    assert ([row.idx for row in report.rows], report.retired) == ([1, 2], 0)
    assert progress(engine, sweep, {}).states == {0: "done", 1: "failed", 2: "missing",
                                                     3: "missing"}  # fmt: skip
    rerun = prepare_rerun(engine, state, retire=True)
    assert ([row.idx for row in rerun.rows], rerun.retired) == ([1, 2], 1)
    assert progress(engine, sweep, {}).states == {0: "done", 1: "missing", 2: "missing",
                                                     3: "missing"}  # fmt: skip
    assert rerun.slurm_notes() == []
    engine.dispose()


def test_a_success_stored_while_missing_runs_is_never_moved(sqlite_url) -> None:
    """The collector stores a late success for a failed point between the state missing read
    and its retiring: the success stays, no failure is recorded for it, the rerun is harmless."""
    engine = make_engine(sqlite_url)
    sweep, _ = ledger.declare(engine, "s", "t", POINTS)
    store = Store(engine, Schema())
    assert store.write([result(0), result(1, "boom")]) == []
    state = progress(engine, sweep, {})
    assert store.write([result(1)]) == []  # the success replaces the failed row
    rerun = prepare_rerun(engine, state, retire=True)
    assert ([row.idx for row in rerun.rows], rerun.retired) == ([1, 2, 3], 0)
    assert progress(engine, sweep, {}).states == {0: "done", 1: "done", 2: "missing",
                                                     3: "missing"}  # fmt: skip
    with engine.connect() as conn:
        assert conn.execute(ledger.FAILURES.select()).all() == []
    engine.dispose()


def test_a_failure_moves_aside_exactly(db_url) -> None:
    """Error text and job name past MySQL's 64 KiB TEXT, an emit time with microseconds: the
    row in _sweep_failures holds each exactly as the results table did."""
    engine = make_engine(db_url)
    sweep, _ = ledger.declare(engine, "s", "t", POINTS)
    error = "ValueError: " + "é𝄞x" * 20_000  # 140 KB of UTF-8
    data = {"I": 1, "J": 0.5, "_error": error}
    failed = Record(param_key("t", POINTS[1], 0), "t", data, 1_700_000_000.123456, job="J" * 70_000)
    assert Store(engine, Schema()).write([failed]) == []
    with engine.connect() as conn:
        target = sa.Table("t", sa.MetaData(), autoload_with=conn)
        (stored,) = conn.execute(sa.select(target.c._error, target.c._job, target.c._ts)).all()
    assert stored[:2] == (error, "J" * 70_000) and stored[2].microsecond == 123456
    rows = [row for row in ledger.point_rows(engine, "s") if row.idx == 1]
    assert retire_failed(engine, sweep, rows) == 1
    with engine.connect() as conn:
        moved = conn.execute(sa.select(ledger.FAILURES.c.error, ledger.FAILURES.c.job,
                                       ledger.FAILURES.c.ts)).all()  # fmt: skip
    assert [tuple(row) for row in moved] == [tuple(stored)]
    engine.dispose()


def test_failed_rows_move_while_a_collector_commits_sqlite(sqlite_url) -> None:
    """A collector's batch committed while missing moves the failed rows (here: just before it
    writes) is waited for, never 'database is locked': SQLite's WAL refuses a transaction that
    read before another's commit the right to write, whatever the busy timeout."""
    engine, collector = make_engine(sqlite_url), make_engine(sqlite_url)
    sweep, _ = ledger.declare(engine, "s", "t", POINTS)
    assert Store(engine, Schema()).write([result(1, "boom"), result(2, "bang")]) == []
    store, batches = Store(collector, Schema()), [[result(0)]]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def commit_meanwhile(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "DELETE")) and batches:
            assert store.write(batches.pop()) == []  # the collector's batch, committed

    rows = [row for row in ledger.point_rows(engine, "s") if row.idx in (1, 2)]
    assert retire_failed(engine, sweep, rows) == 2
    assert not batches
    assert progress(engine, sweep, {}).states == {0: "done", 1: "missing", 2: "missing",
                                                     3: "missing"}  # fmt: skip
    engine.dispose()
    collector.dispose()


def check_failed_rows_move_aside(db_url: str) -> None:
    engine = make_engine(db_url)
    sweep, _ = ledger.declare(engine, "s", "t", POINTS)
    assert progress(engine, sweep, {}).count("missing") == 4  # no table yet
    assert Store(engine, Schema()).write([result(0), result(1, "boom"), result(2, "bang")]) == []
    state = progress(engine, sweep, {})
    assert state.states == {0: "done", 1: "failed", 2: "failed", 3: "missing"}
    rows = [r for r in ledger.point_rows(engine, "s") if r.idx in (1, 2)]
    assert retire_failed(engine, sweep, rows) == 2
    assert progress(engine, sweep, {}).states == {0: "done", 1: "missing", 2: "missing",
                                                     3: "missing"}  # fmt: skip
    store = Store(engine, Schema())
    assert store.write([result(1), result(2), result(3)]) == []
    assert progress(engine, sweep, {}).complete
    with engine.connect() as conn:
        failures = conn.execute(ledger.FAILURES.select().order_by(ledger.FAILURES.c.idx)).all()
    assert [(f.sweep, f.idx, f.error) for f in failures] == [("s", 1, "boom"), ("s", 2, "bang")]
    engine.dispose()


def test_failed_rows_move_aside_for_the_rerun_sqlite(sqlite_url) -> None:
    check_failed_rows_move_aside(sqlite_url)


@pytest.mark.postgres
def test_failed_rows_move_aside_for_the_rerun_postgres(pg_url) -> None:
    check_failed_rows_move_aside(pg_url)


def test_watch_shows_a_bar_until_every_point_has_a_row(fake_redis, sqlite_url, monkeypatch):
    monkeypatch.setattr(redis.Redis, "from_url", classmethod(lambda cls, url, **kw: fake_redis))
    engine = make_engine(sqlite_url)
    ledger.declare(engine, "s", "t", POINTS)
    Store(engine, Schema()).write([result(0), result(1, "boom")])

    def finish() -> None:
        time.sleep(0.3)
        Store(engine, Schema()).write([result(2), result(3)])

    worker = threading.Thread(target=finish)
    worker.start()
    out = CliRunner().invoke(
        main, ["sweep", "status", "s", "--watch", "--interval", "0.1", "--db-url", sqlite_url]
    )
    worker.join()
    engine.dispose()
    assert out.exit_code == 0, out.output
    assert "4/4" in out.stderr
    assert "3 done, 1 failed, 0 queued, 0 running, 0 missing" in out.stderr
    assert out.stdout.splitlines()[1:] == ["  done     3", "  failed   1", "  queued   0",
                                           "  running  0", "  missing  0",
                                           "rerun them:  collector sweep missing s --format "
                                           "rq|dask|slurm|csv"]  # fmt: skip


def test_submit_sweep_declares_and_enqueues_only_what_is_missing(
    fake_redis, sqlite_url, monkeypatch
) -> None:
    monkeypatch.setattr(redis.Redis, "from_url", classmethod(lambda cls, url, **kw: fake_redis))
    grid = ["--grid", "I=0:3:1", "--grid", "J=0.5", "--replicates", "2"]
    args = ["sweep", "submit", "m.f", "--sweep", "s", "--table", "t", *grid, "--rq-queue", "q",
            "--db-url", sqlite_url]  # fmt: skip
    first = CliRunner().invoke(main, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("queued 8 of 8 points of sweep 's' on RQ queue 'q'")
    queue = Queue("q", connection=fake_redis)
    jobs = Job.fetch_many(queue.get_job_ids(), connection=fake_redis)
    assert [j.kwargs for j in jobs[:2]] == [
        {"I": 0, "J": 0.5, "replicate": 0}, {"I": 0, "J": 0.5, "replicate": 1}
    ]  # fmt: skip
    again = CliRunner().invoke(main, args, catch_exceptions=False)
    assert again.stdout.startswith("queued 0 of 8 points")  # all queued already
    assert queue.count == 8
    engine = make_engine(sqlite_url)
    sweep = ledger.load(engine, "s")
    engine.dispose()
    assert (sweep.func, sweep.rq_queue, sweep.spec) == ("m.f", "q", "--grid I=0:3:1 --grid J=0.5")


def test_a_dask_sweep_without_redis_is_unknown_not_an_error(sqlite_url) -> None:
    from collector.sweeps.jobs import sweep_progress

    engine = make_engine(sqlite_url)
    ledger.declare(engine, "s", "t", POINTS)
    ledger.note_submission(engine, "s", "m.f", None)  # submitted to Dask
    closed = redis.Redis(port=1, socket_connect_timeout=0.5)
    state = sweep_progress(engine, ledger.load(engine, "s"), closed, "q", dask_timeout=1)
    engine.dispose()
    assert (state.running_known, state.jobs_from, state.count("missing")) == (False, "dask", 4)
    assert state.jobs_error is not None and state.jobs_error.startswith("redis unavailable: ")
    assert "Connection refused" in state.jobs_error
