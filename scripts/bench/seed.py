"""The tutorial's two ways (/work/shared/seed-database-io.md), measured as it writes them.

seed-direct: W processes, each with its own SQLAlchemy ORM session on one shared database,
committing once per result; "database is locked" failures are counted, not retried.
seed-json: one JSON file of all results, rewritten after each result.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Data(Base):
    """The tutorial's table: an integer key, inputs I and J, output K."""

    __tablename__ = "data"
    id: Mapped[int] = mapped_column(primary_key=True)
    input_I: Mapped[float]
    input_J: Mapped[float]
    result_K: Mapped[float]


def _writer(url: str, start: Any, deadline_after: float, out: Any) -> None:
    """One job: commit one row per result until the deadline; count lock failures."""
    engine = sa.create_engine(url)  # the tutorial's engine: pysqlite's default 5 s busy timeout
    session = sessionmaker(bind=engine)()
    committed = locked = 0
    start.wait()
    t0 = time.time()
    deadline = t0 + deadline_after
    i = 0
    while time.time() < deadline:
        i += 1
        session.add(Data(input_I=i, input_J=random.random(), result_K=random.random()))
        try:
            session.commit()
            committed += 1
        except sa_exc.OperationalError as exc:
            session.rollback()
            if "database is locked" not in str(exc):
                raise
            locked += 1
    session.close()
    engine.dispose()
    out.put((committed, locked, t0, time.time()))


def seed_direct(url: str, writers: int, seconds: float) -> dict[str, Any]:
    """W writer processes for ``seconds``: rows/s (committed rows over the wall time) and the
    number of 'database is locked' failures."""
    engine = sa.create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, start, seconds, out)) for _ in range(writers)]
    for proc in procs:
        proc.start()
    time.sleep(0.2)  # let every writer reach the start line
    start.set()
    reports = [out.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join()
    committed = sum(r[0] for r in reports)
    locked = sum(r[1] for r in reports)
    wall = max(r[3] for r in reports) - min(r[2] for r in reports)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(Data)).scalar_one()
    engine.dispose()
    return {
        "records": committed,
        "seconds": wall,
        "rate": committed / wall,
        "locked": locked,
        "stored": stored,
    }


def sqlite_file(directory: Path, name: str, wal: bool) -> str:
    """A fresh SQLite file URL, in WAL mode or SQLite's default (rollback) journal."""
    path = directory / f"{name}.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode={'WAL' if wal else 'DELETE'}")
    conn.close()
    return f"sqlite:///{path}"


def seed_json(directory: Path, count: int) -> dict[str, Any]:
    """The Dask loop's way: after each result, rewrite one JSON file holding all results.
    Seconds per result at the end: the mean over the last 5% of results."""
    path = directory / f"data-{count}.json"
    results: dict[int, dict[str, float]] = {}
    tail = max(1, count // 20)
    t0 = time.perf_counter()
    tail_start = t0
    for i in range(count):
        if i == count - tail:
            tail_start = time.perf_counter()
        results[i] = {"I": i, "J": random.random(), "K": random.random()}
        with open(path, "w") as file:
            json.dump(results, file)
    end = time.perf_counter()
    return {
        "records": count,
        "seconds": end - t0,
        "rate": count / (end - t0),
        "per_result_at_end": (end - tail_start) / tail,
    }
