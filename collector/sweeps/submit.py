"""Enqueue one RQ job per parameter point, in pipelined batches (10,000 points in seconds), and
record a sweep's submission in its ledger."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import redis
import sqlalchemy as sa
from rq import Queue
from tqdm import tqdm

from collector.sweeps import ledger
from collector.sweeps.ledger import Point, PointRow, Sweep

BATCH = 1000


def _chunks(points: Sequence[Point], size: int) -> Iterator[Sequence[Point]]:
    for start in range(0, len(points), size):
        yield points[start : start + size]


def enqueue_points(
    func: str,
    points: Sequence[Point],
    *,
    connection: redis.Redis,
    queue: str = "default",
    job_timeout: int | None = None,
    progress: bool = False,
) -> list[str]:
    """Enqueue ``func(**point)`` for every point on RQ queue ``queue``; returns the job ids.

    ``func`` is an import path (``package.module.function``) that the workers can import.
    Results go to the collector, so RQ keeps no return values (result_ttl=0).
    """
    rq_queue = Queue(queue, connection=connection)
    job_ids: list[str] = []
    with tqdm(total=len(points), unit="job", disable=not progress, desc="enqueue") as bar:
        for chunk in _chunks(points, BATCH):
            datas = [
                Queue.prepare_data(func, kwargs=dict(point), timeout=job_timeout, result_ttl=0)
                for point in chunk
            ]
            with connection.pipeline() as pipe:
                jobs = rq_queue.enqueue_many(datas, pipeline=pipe)
                pipe.execute()
            job_ids.extend(job.id for job in jobs)
            bar.update(len(chunk))
    return job_ids


def submit_rows(
    engine: sa.Engine,
    sweep: Sweep,
    rows: Sequence[PointRow],
    func: str,
    *,
    connection: redis.Redis,
    queue: str,
    job_timeout: int | None = None,
) -> int:
    """Enqueue ``func`` for ``rows`` of ``sweep`` (a progress bar on the terminal) and remember
    the function and queue in the ledger, so status and reruns need not be told again."""
    kwargs = [row.job_kwargs(sweep.replicates) for row in rows]
    enqueue_points(
        func, kwargs, connection=connection, queue=queue, job_timeout=job_timeout, progress=True
    )
    ledger.note_submission(engine, sweep.name, func, queue)
    return len(kwargs)
