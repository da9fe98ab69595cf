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

import importlib
from collections.abc import Mapping
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from workers.lifecycle import run_exit_hooks

PLUGIN_NAME = "result-collector-flush"


class FlushEmitters(WorkerPlugin):
    """Flushes this worker process's buffered emitters (and re-sends its spool) when the worker
    closes. Install once per cluster: ``client.register_plugin(FlushEmitters())``; workers that
    join later, or that the nanny restarts, get it too."""

    name = PLUGIN_NAME
    idempotent = True  # registering it again (another client, a second submit) changes nothing

    def teardown(self, worker: Any) -> None:
        """Runs on the worker's event loop as the worker closes: one round trip per buffer."""
        run_exit_hooks()


def run_point(func: str, kwargs: Mapping[str, Any]) -> None:
    """Import ``func`` (``package.module.function``) on the worker and call it with one point's
    keyword arguments; the function emits its own row (``@collect``), so the task returns None
    and the cluster holds no results."""
    module, _, name = func.rpartition(".")
    target = getattr(importlib.import_module(module), name)
    target(**kwargs)
