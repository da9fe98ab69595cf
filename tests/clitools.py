"""Helpers for the CLI tests: the console script in a subprocess, a collector drained in-process."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import sqlalchemy as sa
from conftest import REAL_REDIS_URL

from collector.daemon import Collector, Counters
from collector.settings import Settings


def collector(*args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m collector ARGS`` (the console script's code) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def on_real_redis(settings: Settings) -> Settings:
    """The test's settings pointed at the machine's Redis (for work shared with subprocesses)."""
    return dataclasses.replace(settings, redis_url=REAL_REDIS_URL)


def drain(settings: Settings, declared: sa.MetaData | None = None) -> Counters:
    """Run the collector until its queue is empty (``declared`` tables created first, as
    ``collector run --models`` does); return what it did."""
    daemon = Collector(settings, declared=declared)
    if declared is not None:
        declared.create_all(daemon.engine)
    daemon.start()
    try:
        while daemon.run_once():
            pass
    finally:
        daemon.close()
    return daemon.counters


def rows(db_url: str, table: str, order_by: str = "_id") -> list[dict]:
    """Every row of ``table`` as a dict, ordered by ``order_by``."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            tbl = sa.Table(table, sa.MetaData(), autoload_with=conn)
            query = sa.select(tbl).order_by(tbl.c[order_by])
            return [dict(row) for row in conn.execute(query).mappings()]
    finally:
        engine.dispose()
