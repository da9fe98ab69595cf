"""Where a sweep stands (its progress): each point done, failed, queued, running or missing.

Done and failed come from one join of ``_sweep_points`` with the results table (a row without
``_error``, a row with it); queued and running from RQ: the jobs waiting (queued, scheduled,
deferred) and started whose keyword arguments give a point's key (or from a Dask scheduler:
``daskjobs.dask_jobs``). A point is in exactly one state.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
import sqlalchemy as sa
from rq import Queue
from rq.exceptions import DeserializationError
from rq.job import Job, JobStatus
from rq.registry import DeferredJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from collector.errors import ConfigError
from collector.shards import known_streams
from collector.sweeps.ledger import POINTS, PointRow, Sweep, point_rows
from workers.cluster import REDIS_ERRORS
from workers.keys import point_key

DONE, FAILED, QUEUED, RUNNING, MISSING = "done", "failed", "queued", "running", "missing"
STATES = (DONE, FAILED, QUEUED, RUNNING, MISSING)
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}  # not started yet
ACTIVE = {*WAITING, JobStatus.STARTED}


@dataclass
class Progress:
    """The state of every point of a sweep (by index); ``running_known`` is False when RQ or
    the Dask scheduler could not be asked, and then no point is counted as queued or running."""

    sweep: Sweep
    states: dict[int, str]
    running_known: bool = True
    jobs_error: str | None = None  # why RQ or Dask could not be asked, when it could not
    jobs_from: str | None = None  # "rq" or "dask": who was asked (None: nobody runs the sweep)

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)

    def indexes(self, *states: str) -> list[int]:
        """The indexes of the points in any of ``states``, ascending."""
        return sorted(idx for idx, s in self.states.items() if s in states)

    @property
    def complete(self) -> bool:
        """True when every point has a row, successful or failed."""
        return self.count(DONE) + self.count(FAILED) == self.sweep.total

    def as_dict(self) -> dict[str, Any]:
        counts = Counter(self.states.values())
        return {
            "sweep": self.sweep.name,
            "table": self.sweep.table,
            "total": self.sweep.total,
            **{state: counts.get(state, 0) for state in STATES},
            "running_known": self.running_known,
            "jobs_from": self.jobs_from,
            "jobs_error": self.jobs_error,
        }


def stored_states(engine: sa.Engine, sweep: Sweep) -> list[tuple[int, str, str]]:
    """(index, record id, done / failed / missing) for every point, from the results table."""
    base = sa.select(POINTS.c.idx, POINTS.c.record_id)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(sweep.table):
            query = base.add_columns(sa.literal(MISSING)).where(POINTS.c.sweep == sweep.name)
            return [tuple(row) for row in conn.execute(query)]
        target = sa.Table(sweep.table, sa.MetaData(), autoload_with=conn)
        if "_id" not in target.c:
            raise ConfigError(f"table {sweep.table!r} has no _id column, so no keyed records")
        failed = target.c._error.isnot(None) if "_error" in target.c else sa.false()
        state = sa.case((target.c._id.is_(None), MISSING), (failed, FAILED), else_=DONE)
        query = (
            base.add_columns(state)
            .select_from(POINTS.outerjoin(target, target.c._id == POINTS.c.record_id))
            .where(POINTS.c.sweep == sweep.name)
        )
        return [tuple(row) for row in conn.execute(query)]


def active_jobs(connection: redis.Redis, rq_queue: str, table: str) -> dict[str, str]:
    """Point keys of the RQ jobs on ``rq_queue`` with each job ``QUEUED`` (waiting on the
    queue, scheduled or deferred) or ``RUNNING`` (started by a worker, in the started registry,
    not abandoned): one pipelined fetch, cheap for 10,000 jobs."""
    queue = Queue(rq_queue, connection=connection)
    started = StartedJobRegistry(queue=queue)
    abandoned = set(started.get_expired_job_ids(time.time()))
    ids = set(queue.get_job_ids())
    ids.update(i for i in started.get_job_ids(cleanup=False) if i not in abandoned)
    for registry in (ScheduledJobRegistry(queue=queue), DeferredJobRegistry(queue=queue)):
        ids.update(registry.get_job_ids(cleanup=False))
    jobs: dict[str, str] = {}
    for job in Job.fetch_many(sorted(ids), connection=connection, serializer=queue.serializer):
        status = None if job is None else job.get_status(refresh=False)
        if job is None or status not in ACTIVE:
            continue
        try:
            args, kwargs = job.args, job.kwargs
            if kwargs and not args:  # sweep jobs take their parameters as keywords
                jobs[point_key(table, kwargs)] = QUEUED if status in WAITING else RUNNING
        except (DeserializationError, TypeError, ValueError):
            continue  # not a sweep job: arguments that are not plain values or no int replicate
    return jobs


def progress(
    engine: sa.Engine,
    sweep: Sweep,
    active: Mapping[str, str] | None = None,
    jobs_error: str | None = None,
    jobs_from: str | None = None,
) -> Progress:
    """The sweep's progress; a point not done whose key is in ``active`` (from ``active_jobs``
    or ``daskjobs.dask_jobs``: key -> ``QUEUED`` or ``RUNNING``) takes that state. ``active``
    None: nobody could be asked (``jobs_error``: why)."""
    states: dict[int, str] = {}
    for idx, record_id, state in stored_states(engine, sweep):
        job = None if active is None or state == DONE else active.get(record_id)
        states[idx] = state if job is None else job
    known = active is not None
    return Progress(sweep, states, known, jobs_error=jobs_error, jobs_from=jobs_from)


def rq_progress(
    engine: sa.Engine, sweep: Sweep, client: redis.Redis, rq_queue: str | None, *, strict: bool
) -> Progress:
    """Progress with the running points asked from RQ queue ``rq_queue`` (default: the one the
    sweep was submitted on). A Redis error raises when ``strict`` (the caller is about to
    enqueue); otherwise queued and running are left unknown and ``jobs_error`` says why."""
    queue_name = rq_queue or sweep.rq_queue
    if queue_name is None:
        return progress(engine, sweep, {})  # never submitted to RQ: nothing queued or running
    try:
        jobs = active_jobs(client, queue_name, sweep.table)
    except REDIS_ERRORS as exc:
        if strict:
            raise
        return progress(engine, sweep, None, f"redis unavailable: {exc}", "rq")
    return progress(engine, sweep, jobs, jobs_from="rq")


def rows_in(engine: sa.Engine, state: Progress, *states: str) -> list[PointRow]:
    """The ledger rows of the points in any of ``states``, in index order."""
    wanted = set(state.indexes(*states))
    return [row for row in point_rows(engine, state.sweep.name) if row.idx in wanted]


def unstored(client: redis.Redis, queue: str) -> int | None:
    """Records in the queue's streams (workers.shards.read_streams) that the collector has not
    stored yet (None: Redis unavailable): while there are any, the counts may
    still grow."""
    try:
        return sum(int(client.xlen(name)) for name in known_streams(client, queue))
    except REDIS_ERRORS:
        return None
