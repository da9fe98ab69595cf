"""Dask on the node side: a worker plugin that flushes buffered emitters when a worker closes,
and the task that ``collector sweep submit --dask`` sends for each point.

``import workers`` never imports this module (nor distributed): only code that uses Dask does,
so jobs without Dask do not pay for it. Inside a Dask task ``_job`` is the task key
(``workers.jobinfo.current_job_id``); this module is not needed for that.

A closing worker (``client.shutdown()``, ``cluster.close()``, ``retire_workers``, a worker's
``--lifetime``, the nanny restarting it after ``client.restart()``) runs its plugins' teardown:
``FlushEmitters`` sends what every buffered emitter of the worker's process holds, then re-sends
any spool. A worker process that is killed (SIGKILL, the out-of-memory killer, the nanny
terminating a worker that did not close in time, a node failure) loses its unflushed buffers.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from workers.api import default_emitter
from workers.cluster import REDIS_ERRORS
from workers.errors import CollectorError
from workers.jobinfo import dask_task_key, host_name
from workers.lifecycle import run_exit_hooks

PLUGIN_NAME = "result-collector-flush"
STARTED_TTL = 7 * 24 * 3600  # seconds a sweep's start notes outlive its last task start
NOTE_ERRORS: tuple[type[Exception], ...] = (*REDIS_ERRORS, CollectorError)  # no Redis, no setting
log = logging.getLogger(__name__)


class FlushEmitters(WorkerPlugin):
    """Flushes this worker process's buffered emitters (and re-sends its spool) when the worker
    closes. Install once per cluster: ``client.register_plugin(FlushEmitters())``; workers that
    join later, or that the nanny restarts, get it too."""

    name = PLUGIN_NAME
    idempotent = True  # registering it again (another client, a second submit) changes nothing

    def teardown(self, worker: Any) -> None:
        """Runs on the worker's event loop as the worker closes: one round trip per buffer."""
        run_exit_hooks()


def run_point(func: str, kwargs: Mapping[str, Any], started: str | None = None) -> None:
    """Import ``func`` (``package.module.function``) on the worker and call it with one point's
    keyword arguments; the function emits its own row (``@collect``), so the task returns None
    and the cluster holds no results. ``started``: the Redis hash where the task notes that it
    runs, for as long as it runs (collector.sweeps.daskjobs reads it)."""
    module, _, name = func.rpartition(".")
    target = getattr(importlib.import_module(module), name)
    with _noted(started, dask_task_key()):
        target(**kwargs)


@contextlib.contextmanager
def _noted(started: str | None, key: str | None) -> Iterator[None]:
    """Field ``key`` of hash ``started`` (host, pid, start time) while the block runs, on the
    Redis the results go to. A note that cannot be written or removed only makes the status
    show the point as queued or running a while longer: the job runs either way."""
    if started is None or key is None:
        yield
        return
    try:
        client = default_emitter().client
        with client.pipeline(transaction=False) as pipe:
            pipe.hset(started, key, f"{host_name()} {os.getpid()} {time.time():.3f}")
            pipe.expire(started, STARTED_TTL)
            pipe.execute()
    except NOTE_ERRORS as exc:
        log.warning("cannot note the start of task %s in Redis: %s", key, exc)
        yield
        return
    try:
        yield
    finally:
        try:
            client.hdel(started, key)
        except REDIS_ERRORS as exc:
            log.warning("cannot remove the start note of task %s from Redis: %s", key, exc)
