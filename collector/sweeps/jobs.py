"""A sweep's progress with its queued and running points asked where the sweep runs: RQ for a
sweep submitted there, the Dask scheduler noted at submission (or the one given) for a sweep on
Dask. The one function behind both ``collector sweep status`` and the status page."""

from __future__ import annotations

import redis
import sqlalchemy as sa

from collector.errors import SchedulerUnavailable
from collector.sweeps import daskjobs
from collector.sweeps.ledger import Sweep
from collector.sweeps.progress import Progress, progress, rq_progress
from workers.cluster import REDIS_ERRORS


def sweep_progress(
    engine: sa.Engine,
    sweep: Sweep,
    client: redis.Redis,
    queue: str,
    *,
    rq_queue: str | None = None,
    dask_address: str | None = None,
    dask_timeout: float,
    gone: dict[str, str] | None = None,
) -> Progress:
    """The sweep's progress: queued and running from RQ queue ``rq_queue`` (default: the
    sweep's), or from the Dask scheduler at ``dask_address`` (default: the one noted for a sweep
    submitted to Dask), which has ``dask_timeout`` seconds to answer. Never raises for Redis or
    a scheduler that is gone: then queued and running are unknown and ``jobs_error`` says why;
    distributed is imported only for Dask. ``gone``: schedulers that did not answer earlier in
    the same pass (address -> why), not asked again; one that does not answer is added."""
    on_dask = dask_address is not None or (
        rq_queue is None and sweep.rq_queue is None and sweep.func is not None
    )
    if not on_dask:
        return rq_progress(engine, sweep, client, rq_queue, strict=False)
    try:
        address = dask_address or _noted_address(client, queue, sweep)
        started = daskjobs.started_tasks(client, queue, sweep.name)
    except REDIS_ERRORS as exc:
        return progress(engine, sweep, None, f"redis unavailable: {exc}", "dask")
    if address is None:
        why = "no Dask scheduler noted for the sweep: collector sweep status --dask ADDRESS"
        return progress(engine, sweep, None, why, "dask")
    gone = {} if gone is None else gone
    if address in gone:
        return progress(engine, sweep, None, gone[address], "dask")
    try:
        return daskjobs.dask_progress(engine, sweep, address, dask_timeout, started)
    except SchedulerUnavailable as exc:
        gone[address] = str(exc)
        return progress(engine, sweep, None, str(exc), "dask")


def _noted_address(client: redis.Redis, queue: str, sweep: Sweep) -> str | None:
    noted = client.get(daskjobs.scheduler_key(queue, sweep.name))
    if noted is None:
        return None
    return noted.decode() if isinstance(noted, bytes) else str(noted)
