"""A small real Dask cluster for tests: the issue's 2 worker processes x 4 threads, bounded
start and stop, no dashboard; and a collector drained until a table has the rows expected."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from distributed import Client, LocalCluster

from collector.daemon import Collector
from collector.settings import Settings

WORKERS, THREADS = 2, 4
START_TIMEOUT = 60  # seconds for the workers to come up on a loaded 2-core machine


@contextlib.contextmanager
def local_cluster(**scheduler_kwargs: Any) -> Iterator[LocalCluster]:
    """A LocalCluster of WORKERS nanny-managed worker processes of THREADS threads each; the
    environment (COLLECTOR_*) is the caller's at the time of the call."""
    cluster = LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=THREADS,
        processes=True,
        dashboard_address=None,
        worker_dashboard_address=None,
        silence_logs=logging.CRITICAL,
        scheduler_kwargs=scheduler_kwargs,
    )
    try:
        with Client(cluster, set_as_default=False) as client:
            client.wait_for_workers(WORKERS, timeout=START_TIMEOUT)
        yield cluster
    finally:
        cluster.close(timeout=30)


def count_rows(db_url: str, table: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                return 0
            sql = f'SELECT COUNT(*) FROM "{table}"'  # noqa: S608 - test names
            return int(conn.exec_driver_sql(sql).scalar_one())
    finally:
        engine.dispose()


def collect_until(settings: Settings, table: str, count: int, timeout: float = 120) -> int:
    """Run a collector until ``table`` has ``count`` rows or ``timeout`` passes; the row count."""
    daemon = Collector(settings)
    daemon.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            while daemon.run_once():
                pass
            rows = count_rows(settings.db_url, table)
            if rows >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)
    finally:
        daemon.close()
