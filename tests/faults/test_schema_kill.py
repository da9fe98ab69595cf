"""The collector SIGKILLed in the middle of a schema change (an int column widened to float,
which on SQLite copies the whole table): the change rolls back with its batch, no scratch table
is left, every row is intact, and the next start finishes the job."""

from __future__ import annotations

import signal
import sqlite3

import pytest
import redis
import sqlalchemy as sa

from collector.db import make_engine
from collector.store import Schema, Store
from faults.servers import drained, start_collector, wait_until
from workers import Emitter
from workers.record import Record

pytestmark = pytest.mark.slow
ROWS = 600_000


def column_type(db_url: str, name: str) -> sa.types.TypeEngine:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            assert tables == ["results"], tables  # no scratch table left behind
            (column,) = [c for c in sa.inspect(conn).get_columns("results") if c["name"] == name]
            return column["type"]
    finally:
        engine.dispose()


def count(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute('SELECT count(*) FROM "results"').fetchone()[0])


def test_sigkill_during_a_widening_leaves_no_trace(real_redis, tmp_path, queue) -> None:
    path = str(tmp_path / "big.db")
    db_url = f"sqlite:///{path}"
    engine = make_engine(db_url)
    Store(engine, Schema()).write([Record("seed", "results", {"v": 0, "s": "x"})])
    engine.dispose()
    with sqlite3.connect(path) as conn:  # a big table, fast: plain sqlite3
        conn.executemany(
            'INSERT INTO "results" ("_id", "v", "s") VALUES (?, ?, ?)',
            ((f"r{i}", i, "payload " * 8) for i in range(ROWS)),
        )
    url = "redis://127.0.0.1:6379/0"
    emitter = Emitter(url, queue)
    emitter.emit({"v": 2.5}, key="float")
    emitter.close()
    daemon = start_collector(url, db_url, queue)
    daemon.wait_for("widening v of table results to float")
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    assert isinstance(column_type(db_url, "v"), sa.BigInteger)  # rolled back, not half done
    assert count(path) == ROWS + 1
    daemon = start_collector(url, db_url, queue)
    client = redis.Redis.from_url(url)
    try:
        wait_until(lambda: drained(client, queue), 60, "the float record")
    finally:
        client.close()
        assert daemon.stop() == 0, daemon.err
    assert isinstance(column_type(db_url, "v"), sa.Float)
    assert count(path) == ROWS + 2
