"""Shared pieces of the benchmark: sizes, the tutorial's record, temporary resources, filling."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from tqdm import tqdm

from workers import xadd
from workers.emitter import Emitter
from workers.names import FIELD, QueueNames
from workers.shards import route

ROOT = Path(__file__).resolve().parents[2]  # the repository: where ``scripts.bench`` imports from
TABLE = "results"


@dataclass(frozen=True)
class Sizes:
    """How much work each case does; ``--quick`` and ``--scale`` pick these."""

    writers: tuple[int, ...]  # seed-direct W
    seed_seconds: float  # how long each seed-direct configuration writes
    json_counts: tuple[int, ...]  # seed-json N
    backlog: int  # records for the ceilings and the collector drain
    rss_backlog: int  # records drained for the peak-RSS figure (0: use ``backlog``)
    producers: tuple[int, ...]  # end-to-end P
    e2e_records: int  # records emitted in total per end-to-end run
    emit_calls: int  # calls per kind in the emit-cost case
    memory_records: int  # records queued per wire version for Redis memory per record

    @classmethod
    def pick(cls, quick: bool, scale: float) -> Sizes:
        if quick:
            base = cls((4, 16), 0.5, (200, 1000), 20_000, 0, (4, 16), 4_000, 2_000, 20_000)
        else:
            base = cls(
                (4, 16, 64), 4.0, (1000, 5000), 500_000, 1_000_000, (4, 16), 100_000, 20_000,
                1_000_000,
            )  # fmt: skip
        if scale == 1:
            return base
        return cls(
            base.writers,
            base.seed_seconds * scale,
            base.json_counts,
            int(base.backlog * scale),
            int(base.rss_backlog * scale),
            base.producers,
            int(base.e2e_records * scale),
            int(base.emit_calls * scale),
            int(base.memory_records * scale),
        )


def result_data(i: int) -> dict[str, Any]:
    """The tutorial's record: inputs I and J, output K."""
    return {"I": i, "J": random.random(), "K": random.random()}


def unique_queue() -> str:
    return f"bench:{uuid.uuid4().hex[:12]}:results"


def drop_queue(client: redis.Redis, queue: str) -> None:
    keys = list(client.scan_iter(match=f"{queue}*"))
    if keys:
        client.delete(*keys)


def fill(
    redis_url: str, queue: str, count: int, label: str, *, batched: bool = False, shards: int = 1
) -> None:
    """Put ``count`` records on ``queue``, 1,000 per round trip: one stream entry per record, as
    ``emit`` sends them, or (``batched``) one batch entry per 1,000, as ``emit_many`` sends them;
    spread over ``shards`` as emitters spread them."""
    emitter = Emitter(redis_url, queue, shards=shards)
    try:
        with tqdm(total=count, desc=label, unit="rec", leave=False, file=sys.stderr) as bar:
            for start in range(0, count, 1000):
                data = [result_data(i) for i in range(start, min(count, start + 1000))]
                if batched:
                    emitter.emit_many(data, table=TABLE)
                else:
                    payloads = [emitter.record(d, table=TABLE).encode() for d in data]
                    for stream, group in route(QueueNames(queue), shards, payloads).items():
                        xadd.send(emitter.client, stream, FIELD, group)
                bar.update(len(data))
    finally:
        emitter.close()


@contextlib.contextmanager
def temp_pg_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database (CREATE DATABASE), dropped (FORCE) on the way out."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"rc_bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.engine.make_url(admin_url).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def count_rows(db_url: str, table: str = TABLE) -> tuple[int, int]:
    """(rows, distinct _id values) in ``table``."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            sql = f'SELECT COUNT(*), COUNT(DISTINCT "_id") FROM "{table}"'  # noqa: S608 - constant
            total, distinct = conn.exec_driver_sql(sql).one()
            return int(total), int(distinct)
    finally:
        engine.dispose()


def start_child(
    redis_url: str, db_url: str, queue: str, expect: int, batch: int, *extra: str
) -> subprocess.Popen:
    """A collector (``scripts.bench.child``) in a fresh interpreter, with its own peak RSS, that
    stops once it has taken ``expect`` records (``extra``: more of its flags). The URLs go on
    its stdin, never its argv: they may hold passwords."""
    args = ["--queue", queue, "--expect", str(expect), "--batch-size", str(batch), *extra]
    command = [sys.executable, "-m", "scripts.bench.child", *args]
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps({"redis_url": redis_url, "db_url": db_url}) + "\n")
    proc.stdin.flush()
    return proc


def read_line(proc: subprocess.Popen) -> dict[str, Any]:
    """The next JSON line a child prints (one when ready, one when done; it has its own
    timeout, so this returns)."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"benchmark child {proc.args} ended early (exit {proc.wait()})")
    return json.loads(line)


def environment() -> dict[str, Any]:
    """What the numbers were measured on."""
    import platform
    import sqlite3

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sa.__version__,
        "redis-py": redis.__version__,
    }
