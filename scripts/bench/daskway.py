"""The tutorial's Dask way against Dask tasks that emit, on one LocalCluster, in the same run.

dask-json: ``client.submit(op, el)`` per input, then the tutorial's ``as_completed`` loop on
the client, rewriting one JSON file of all results after each result.
dask-emit: the same ``op``, decorated with ``@collect``, through ``client.map``; each task
stores its own row through the collector (a child process), and the clock stops at the commit
of the last row. ``op`` does no work of its own (the tutorial's sleep would only measure the
sleep): what is measured is what each way costs per result on top of Dask.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scripts.bench.common import count_rows, read_line, start_child
from workers import collect

WORKERS, THREADS = 2, 4  # the 2-core machine: the tests' cluster
TABLE = "dask"


def count(quick: bool, scale: float) -> int:
    """Results per way: 300 with --quick, else 2,000, times --scale."""
    return max(10, int((300 if quick else 2000) * scale))


def op(val: int) -> int:
    """The tutorial's op, without its sleep."""
    return val + 1


@collect(table=TABLE, key="params")
def emit_op(val: int) -> int:
    """The same op; its input and output become one row."""
    return val + 1


@contextmanager
def cluster(redis_url: str, queue: str) -> Iterator[Any]:
    """A LocalCluster whose worker processes send to ``queue``, and a client on it."""
    from distributed import Client, LocalCluster

    saved = {name: os.environ.get(name) for name in ("COLLECTOR_REDIS_URL", "COLLECTOR_QUEUE")}
    os.environ["COLLECTOR_REDIS_URL"], os.environ["COLLECTOR_QUEUE"] = redis_url, queue
    local = LocalCluster(
        n_workers=WORKERS, threads_per_worker=THREADS, processes=True, dashboard_address=None,
        worker_dashboard_address=None, silence_logs=logging.CRITICAL,
    )  # fmt: skip
    try:
        with Client(local) as client:  # the default client, as the tutorial's loop needs
            client.wait_for_workers(WORKERS, timeout=120)
            yield client
    finally:
        local.close(timeout=60)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dask_json(client: Any, directory: Path, count: int) -> dict[str, Any]:
    """The tutorial's loop, as written: a dict future -> input, as_completed, the whole JSON
    file rewritten after each result. Seconds per result at the end: over the last 5%."""
    from distributed import as_completed

    path = directory / f"dask-data-{count}.json"
    tail = max(1, count // 20)
    t0 = time.perf_counter()
    futures = {client.submit(op, el, pure=False): el for el in range(count)}
    results: dict[int, int] = {}
    tail_start = t0
    for done, future in enumerate(as_completed(futures.keys())):
        if done == count - tail:
            tail_start = time.perf_counter()
        results[futures[future]] = future.result()
        with open(path, "w") as file:
            json.dump(results, file)
    end = time.perf_counter()
    assert len(json.loads(path.read_text())) == count
    return {
        "records": count,
        "seconds": end - t0,
        "rate": count / (end - t0),
        "per_result_at_end": (end - tail_start) / tail,
    }


def dask_emit(
    client: Any, redis_url: str, db_url: str, queue: str, count: int, batch: int
) -> dict[str, Any]:
    """The same inputs through ``client.map(emit_op, ...)`` with the collector running: from the
    first submit to the commit of the last row."""
    from distributed import wait

    child = start_child(redis_url, db_url, queue, count, batch)
    read_line(child)
    t0 = time.time()
    futures = client.map(emit_op, range(count), pure=False)
    wait(futures)
    tasks_done = time.time()
    report = read_line(child)
    child.wait()
    stored, distinct = count_rows(db_url, TABLE)
    seconds = report["last_commit"] - t0
    return {
        "records": count,
        "seconds": seconds,
        "rate": count / seconds,
        "lag": report["last_commit"] - tasks_done,
        "stored": stored,
        "distinct": distinct,
        "dead": report["dead"],
        "batches": report["batches"],
    }
