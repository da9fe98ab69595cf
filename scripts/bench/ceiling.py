"""Ceilings on this machine: what each half of the collector's work costs on its own, built
from library calls only (redis-py with hiredis, msgpack, sqlite3, psycopg), never our code, so
that a ceiling never measures the project against itself.

sqlite-executemany: stdlib sqlite3 ``executemany`` of ready tuples into the collector's table
layout (the metadata columns ``_elapsed`` and ``_maxrss`` included: the bench's records carry
them), its pragmas, one transaction.
redis-drain: redis-py XREADGROUP COUNT 2000, ``msgpack.unpackb`` of each record, then XACK and
XDEL in one pipeline per batch; no database.
pg-copy: psycopg COPY of ready tuples into the same layout, one transaction (or one per 2,000).
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

import msgpack
import psycopg
import redis

from scripts.bench.common import TABLE, fill
from workers.record import new_id

# The collector's layout for the bench's records, which carry the emitter's elapsed and maxrss.
COLUMNS = '"_id", "_ts", "_host", "_pid", "_job", "_elapsed", "_maxrss", "_error", "I", "J", "K"'
SQLITE_DDL = (
    f'CREATE TABLE "{TABLE}" ("_id" VARCHAR(255) PRIMARY KEY, "_ts" DATETIME, "_host" TEXT, '
    '"_pid" INTEGER, "_job" TEXT, "_elapsed" FLOAT, "_maxrss" BIGINT, "_error" TEXT, '
    '"I" BIGINT, "J" FLOAT, "K" FLOAT)'
)
MARKS = ", ".join("?" * (COLUMNS.count(",") + 1))  # sqlite3's placeholders, one a column
PG_DDL = SQLITE_DDL.replace("DATETIME", "TIMESTAMP WITHOUT TIME ZONE").replace(
    "FLOAT", "DOUBLE PRECISION"
)


def rows(count: int) -> list[tuple[Any, ...]]:
    """``count`` rows as the collector would store them (naive UTC ``_ts``)."""
    host, pid, now = socket.gethostname(), os.getpid(), dt.datetime.now(dt.UTC)
    stamp = now.replace(tzinfo=None)
    rss = 50 << 20
    return [
        (new_id(), stamp, host, pid, None, random.random(), rss, None, i, random.random(),
         random.random())
        for i in range(count)
    ]  # fmt: skip


def sqlite_executemany(directory: Path, count: int) -> dict[str, Any]:
    path = directory / "ceiling.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(SQLITE_DDL)
    conn.commit()
    data = [(r[0], r[1].isoformat(sep=" "), *r[2:]) for r in rows(count)]
    t0 = time.perf_counter()
    conn.executemany(f'INSERT INTO "{TABLE}" ({COLUMNS}) VALUES ({MARKS})', data)  # noqa: S608
    conn.commit()
    seconds = time.perf_counter() - t0
    conn.close()
    return {"records": count, "seconds": seconds, "rate": count / seconds}


def ack_and_delete(client: redis.Redis, queue: str, entries: list[Any]) -> None:
    """XACK and XDEL of ``entries`` in one pipeline, as the drain ceilings finish a batch."""
    ids = [mid for mid, _fields in entries]
    pipe = client.pipeline(transaction=False)
    pipe.xack(queue, "ceiling", *ids)
    pipe.xdel(queue, *ids)
    pipe.execute()


def redis_drain(redis_url: str, queue: str, count: int, batch: int = 2000) -> dict[str, Any]:
    """Fill ``queue`` with ``count`` records (one entry each), then read, unpack and
    acknowledge/delete them all with redis-py and msgpack alone."""
    fill(redis_url, queue, count, "fill (redis drain)")
    client = redis.Redis.from_url(redis_url)
    client.xgroup_create(queue, "ceiling", id="0")
    done = 0
    t0 = time.perf_counter()
    while True:
        reply: Any = client.xreadgroup("ceiling", "ceiling", {queue: ">"}, count=batch)
        if not reply:
            break
        entries = reply[0][1]
        for _mid, fields in entries:
            msgpack.unpackb(fields[b"m"], raw=False, timestamp=3)
        ack_and_delete(client, queue, entries)
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
