"""Job functions the Dask tests run on workers (imported there by name, as a user's module is).
They send to COLLECTOR_REDIS_URL / COLLECTOR_QUEUE, which the tests set before the cluster
starts, so the worker processes inherit them."""

from __future__ import annotations

import os
import time

import redis

from tests.sweep_jobs import wait_for_release
from workers import Emitter, collect

TABLE = "ij"


@collect(table=TABLE, key="params")
def op(I: float, J: float, replicate: int = 0) -> dict[str, float]:  # noqa: E741 - the tutorial's
    """The tutorial's op on two inputs: K = I * J + replicate / 10."""
    return {"K": I * J + replicate / 10}


@collect(table=TABLE, key="params")
def slow_op(I: float, J: float) -> dict[str, float]:  # noqa: E741
    """``op`` after 200 ms of work: 300 points keep 8 threads busy for 7.5 s at least, so the
    sweep is still running when a worker is killed."""
    time.sleep(0.2)
    return {"K": I * J}


_buffered: Emitter | None = None


def buffered(i: int) -> int:
    """Emit ``{"i": i}`` under key ``b<i>`` through this process's buffered emitter, which only
    sends when it holds 100,000 records or after an hour: a worker's close must flush it."""
    global _buffered
    if _buffered is None:
        _buffered = Emitter(buffer=100_000, flush_interval=3600)
    _buffered.emit({"i": i, "worker_pid": os.getpid()}, table="buffered", key=f"b{i}")
    return i


@collect(table=TABLE, key="params")
def held(I: float, J: float) -> dict[str, float]:  # noqa: E741
    """``op`` once the test lets it go (``tests.sweep_jobs.wait_for_release``), so the test
    decides how long each task runs."""
    wait_for_release()
    return {"K": I * J}


def noted_while_running(started: str) -> tuple[dict[str, str], int]:
    """The start notes in hash ``started`` and its TTL, as this job sees them while it runs."""
    client = redis.Redis.from_url(os.environ["COLLECTOR_REDIS_URL"])
    try:
        notes = {k.decode(): v.decode() for k, v in client.hgetall(started).items()}
        return notes, int(client.ttl(started))
    finally:
        client.close()
