"""Ceilings on this machine: what each half of the collector's work costs on its own.

sqlite-executemany: stdlib sqlite3, the collector's table layout and pragmas, one transaction.
redis-drain: XREADGROUP + decode + XACK/XDEL through the collector's Stream, no database.
pg-copy: psycopg COPY of the same rows into the same layout, one transaction.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import redis

from collector.stream import Stream
from scripts.bench.common import TABLE, fill
from workers.record import Record, new_id

COLUMNS = '"_id", "_ts", "_host", "_pid", "_job", "_error", "I", "J", "K"'
SQLITE_DDL = (
    f'CREATE TABLE "{TABLE}" ("_id" VARCHAR(255) PRIMARY KEY, "_ts" DATETIME, "_host" TEXT, '
    '"_pid" INTEGER, "_job" TEXT, "_error" TEXT, "I" BIGINT, "J" FLOAT, "K" FLOAT)'
)
PG_DDL = SQLITE_DDL.replace("DATETIME", "TIMESTAMP WITHOUT TIME ZONE").replace(
    "FLOAT", "DOUBLE PRECISION"
)


def rows(count: int) -> list[tuple[Any, ...]]:
    """``count`` rows as the collector would store them (naive UTC ``_ts``)."""
    host, pid, now = socket.gethostname(), os.getpid(), dt.datetime.now(dt.UTC)
    stamp = now.replace(tzinfo=None)
    return [
        (new_id(), stamp, host, pid, None, None, i, random.random(), random.random())
        for i in range(count)
    ]


def sqlite_executemany(directory: Path, count: int) -> dict[str, Any]:
    path = directory / "ceiling.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(SQLITE_DDL)
    conn.commit()
    data = [(r[0], r[1].isoformat(sep=" "), *r[2:]) for r in rows(count)]
    marks = ", ".join("?" * 9)
    t0 = time.perf_counter()
    conn.executemany(f'INSERT INTO "{TABLE}" ({COLUMNS}) VALUES ({marks})', data)  # noqa: S608
    conn.commit()
    seconds = time.perf_counter() - t0
    conn.close()
    return {"records": count, "seconds": seconds, "rate": count / seconds}


def redis_drain(redis_url: str, queue: str, count: int, batch: int = 2000) -> dict[str, Any]:
    """Fill ``queue`` with ``count`` records, then read, decode and ack/delete them all."""
    fill(redis_url, queue, count, "fill (redis drain)")
    client = redis.Redis.from_url(redis_url)
    stream = Stream(client, queue, "ceiling")
    stream.ensure_group()
    done = 0
    t0 = time.perf_counter()
    while True:
        entries = stream.read_new(batch, 0)
        if not entries:
            break
        for entry in entries:
            assert entry.raw is not None
            Record.decode(entry.raw)
        stream.finish([e.id for e in entries], [])
        done += len(entries)
    seconds = time.perf_counter() - t0
    client.close()
    return {"records": done, "seconds": seconds, "rate": done / seconds}


def pg_copy(pg_url: str, count: int, batch: int | None = None) -> dict[str, Any]:
    """COPY ``count`` rows in one transaction, or (``batch``) one COPY and COMMIT per batch:
    the price of committing as often as the collector does."""
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    data = rows(count)
    step = batch or count
    with psycopg.connect(dsn) as conn:
        conn.execute(PG_DDL)
        conn.commit()
        t0 = time.perf_counter()
        for start in range(0, count, step):
            with conn.cursor() as cur, cur.copy(f'COPY "{TABLE}" ({COLUMNS}) FROM STDIN') as copy:
                for row in data[start : start + step]:
                    copy.write_row(row)
            conn.commit()
        seconds = time.perf_counter() - t0
    return {"records": count, "seconds": seconds, "rate": count / seconds}


def serialized(redis_rate: float, db_rate: float) -> float:
    """The rate of doing both halves one after the other: 1/(1/redis + 1/db)."""
    return 1 / (1 / redis_rate + 1 / db_rate)
