"""Sweeps on a Dask cluster: each (point, replicate) is one fire-and-forget task that runs the job
function on a worker, where the function emits its own row; and which points are queued or
running there.

Fire and forget: the client holds no future and no result, so closing it (or losing it) once
the submission has reached the scheduler loses nothing; the scheduler runs every task to its
end, retrying a task whose worker died on another worker. Each task's key is its point's,
``<sweep>-<index>``: a point submitted again while its task is still queued or running joins
that task instead of running twice, a finished task (done or failed) is forgotten by the
scheduler, so a later submission runs its point again.

Queued or running: the scheduler knows which tasks are in flight, not which of them a worker is
executing (it hands a worker more tasks than it has threads), so each task notes its own start
in a Redis hash (``started_key``) and removes the note when it ends. A point is running when its
task is ``processing`` and noted, queued when in flight otherwise. The scheduler's address is
noted in Redis at submission (``scheduler_key``), so the status page and ``sweep status`` find
it. distributed is imported only when a scheduler is asked or given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

import redis
import sqlalchemy as sa

from collector.errors import SchedulerUnavailable
from collector.sweeps import ledger
from collector.sweeps.ledger import Point, PointRow, Sweep
from collector.sweeps.progress import DONE, QUEUED, RUNNING, Progress, progress, stored_states

if TYPE_CHECKING:
    from distributed import Client

IN_FLIGHT = {"released", "waiting", "queued", "processing", "no-worker"}  # not yet finished
STATUS_CHUNK = 10_000  # keys per question to the scheduler
NO_DASK = "Dask is not installed: pip install 'result-collector[dask]'"


def task_key(sweep: str, idx: int) -> str:
    """The Dask key of a point's task: the sweep name and the point's index."""
    return f"{sweep}-{idx}"


def scheduler_key(queue: str, sweep: str) -> str:
    """The Redis key holding the address of the scheduler the sweep was last submitted to."""
    return f"{queue}:sweep:{sweep}:dask"


def started_key(queue: str, sweep: str) -> str:
    """The Redis hash where the sweep's running tasks note their start (task key -> host pid)."""
    return f"{queue}:sweep:{sweep}:started"


def submit_points(
    client: Client,
    func: str,
    kwargs: Sequence[Point],
    keys: list[str] | None = None,
    started: str | None = None,
) -> int:
    """Run ``func(**point)`` once per point on the cluster, fire and forget (``keys``: the tasks'
    keys, else Dask's own; ``started``: the hash where each task notes its start), with the
    plugin that flushes buffered emitters on worker close."""
    from distributed import fire_and_forget

    from workers.daskworker import FlushEmitters, run_point

    client.register_plugin(FlushEmitters())
    if kwargs:
        count = len(kwargs)
        futures = client.map(run_point, [func] * count, list(kwargs), [started] * count, key=keys)
        fire_and_forget(futures)
    return len(kwargs)


def submit_rows(
    client: Client,
    engine: sa.Engine,
    sweep: Sweep,
    rows: Sequence[PointRow],
    func: str,
    notes: tuple[redis.Redis, str],
) -> int:
    """Run ``func`` once per row of ``sweep``, each task keyed by its point; note the function in
    the ledger (and that no RQ queue runs the sweep now) and the scheduler's address in Redis
    (``notes``: the client and the collector's queue name), before any task can start."""
    connection, queue = notes
    connection.set(scheduler_key(queue, sweep.name), str(client.scheduler.address))
    ledger.note_submission(engine, sweep.name, func, None)
    kwargs = [row.job_kwargs(sweep.replicates) for row in rows]
    keys = [task_key(sweep.name, row.idx) for row in rows]
    return submit_points(client, func, kwargs, keys, started_key(queue, sweep.name))


def task_states(address: str, keys: Sequence[str], timeout: float) -> dict[str, str | None]:
    """The scheduler's state of each task in ``keys`` (None: it knows no such task), asked
    without a Client (one connection, ``timeout`` seconds at most for each step);
    SchedulerUnavailable when the scheduler cannot be reached or does not answer."""
    try:
        from distributed.core import rpc
        from distributed.security import Security
    except ImportError:
        raise SchedulerUnavailable(NO_DASK) from None

    async def ask() -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        args = Security().get_connection_args("client")
        async with rpc(address, timeout=timeout, connection_args=args) as scheduler:
            for start in range(0, len(keys), STATUS_CHUNK):
                chunk = list(keys[start : start + STATUS_CHUNK])
                answer = scheduler.get_task_status(keys=chunk)
                found.update(await asyncio.wait_for(answer, timeout))
        return found

    try:
        return asyncio.run(ask())
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        why = str(exc) or f"no answer within {timeout:g} s"
        raise SchedulerUnavailable(f"cannot reach Dask at {address}: {why}") from None


def dask_jobs(
    sweep: Sweep, indexes: Sequence[int], address: str, timeout: float, started: set[str]
) -> dict[int, str]:
    """``QUEUED`` or ``RUNNING`` for each of ``indexes`` whose task is in flight on the scheduler
    at ``address``; running when ``processing`` and its key is in ``started``."""
    keys = {task_key(sweep.name, idx): idx for idx in indexes}
    jobs: dict[int, str] = {}
    for key, state in task_states(address, list(keys), timeout).items():
        if state in IN_FLIGHT:
            jobs[keys[key]] = RUNNING if state == "processing" and key in started else QUEUED
    return jobs


def dask_progress(
    engine: sa.Engine, sweep: Sweep, address: str, timeout: float, started: set[str]
) -> Progress:
    """The sweep's progress with its queued and running points asked from the scheduler."""
    stored = stored_states(engine, sweep)
    pending = [idx for idx, _key, state in stored if state != DONE]
    busy = dask_jobs(sweep, pending, address, timeout, started)
    active = {key: busy[idx] for idx, key, _state in stored if idx in busy}
    return progress(engine, sweep, active, jobs_from="dask")


def started_tasks(connection: redis.Redis, queue: str, sweep: str) -> set[str]:
    """The keys of the sweep's tasks that noted their start and have not ended (one HKEYS)."""
    keys = connection.hkeys(started_key(queue, sweep))
    return {key.decode() if isinstance(key, bytes) else str(key) for key in keys}
