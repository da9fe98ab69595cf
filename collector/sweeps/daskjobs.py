"""Sweeps on a Dask cluster: each (point, replicate) is one fire-and-forget task that runs the job
function on a worker, where the function emits its own row.

Fire and forget: the client holds no future and no result, so closing it (or losing it) once
the submission has reached the scheduler loses nothing; the scheduler runs every task to its
end, retrying a task whose worker died on another worker. Each task's key is its point's,
``<sweep>-<index>``: a point submitted again while its task is still queued or running joins
that task instead of running twice, a finished task (done or failed) is forgotten by the
scheduler, so a later submission runs its point again; and ``status``/``missing`` can ask the
scheduler which points are in flight. distributed is imported only when a command is given a
scheduler (``collector.cli.connect.open_dask``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from collector.sweeps import ledger
from collector.sweeps.ledger import Point, PointRow, Sweep
from collector.sweeps.progress import DONE, Progress, progress, stored_states

if TYPE_CHECKING:
    from distributed import Client

IN_FLIGHT = {"released", "waiting", "queued", "processing", "no-worker"}  # not yet finished
STATUS_CHUNK = 10_000  # keys per question to the scheduler


def task_key(sweep: str, idx: int) -> str:
    """The Dask key of a point's task: the sweep name and the point's index."""
    return f"{sweep}-{idx}"


def submit_points(
    client: Client, func: str, kwargs: Sequence[Point], keys: list[str] | None = None
) -> int:
    """Run ``func(**point)`` once per point on the cluster, fire and forget (``keys``: the tasks'
    keys, else Dask's own), with the plugin that flushes buffered emitters on worker close."""
    from distributed import fire_and_forget

    from workers.daskworker import FlushEmitters, run_point

    client.register_plugin(FlushEmitters())
    if kwargs:
        futures = client.map(run_point, [func] * len(kwargs), list(kwargs), key=keys)
        fire_and_forget(futures)
    return len(kwargs)


def submit_rows(
    client: Client, engine: sa.Engine, sweep: Sweep, rows: Sequence[PointRow], func: str
) -> int:
    """Run ``func`` once per row of ``sweep``, each task keyed by its point, and note the
    function in the ledger (and that no RQ queue runs the sweep now)."""
    kwargs = [row.job_kwargs(sweep.replicates) for row in rows]
    count = submit_points(client, func, kwargs, [task_key(sweep.name, row.idx) for row in rows])
    ledger.note_submission(engine, sweep.name, func, None)
    return count


def in_flight(client: Client, sweep: Sweep, indexes: Sequence[int]) -> set[int]:
    """Which of ``indexes`` have a task queued or running on the scheduler."""
    running: set[int] = set()
    for start in range(0, len(indexes), STATUS_CHUNK):
        chunk = indexes[start : start + STATUS_CHUNK]
        states = client.sync(
            client.scheduler.get_task_status, keys=[task_key(sweep.name, i) for i in chunk]
        )
        running.update(i for i in chunk if states.get(task_key(sweep.name, i)) in IN_FLIGHT)
    return running


def dask_progress(engine: sa.Engine, sweep: Sweep, client: Client) -> Progress:
    """The sweep's progress with its running points asked from the Dask scheduler."""
    stored = stored_states(engine, sweep)
    busy = in_flight(client, sweep, [idx for idx, _key, state in stored if state != DONE])
    return progress(engine, sweep, {key for idx, key, _state in stored if idx in busy})
