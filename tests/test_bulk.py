"""The fast writers (collector/store/writers.py) store exactly what SQLAlchemy's own insert stores;
PostgreSQL's COPY path survives redelivery and isolates a row the database refuses."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from collector.db import make_engine
from collector.store import Schema, Store
from collector.store.writers import Writer, writers_for
from workers.record import Record

AWARE = dt.datetime(2024, 3, 4, 5, 6, 7, 890123, tzinfo=dt.timezone(dt.timedelta(hours=2)))
NAIVE = dt.datetime(1999, 12, 31, 23, 59, 59)
VALUES = [
    {"b": True, "i": 7, "f": 2.5, "s": "text ü", "raw": b"\x00\x01", "at": AWARE, "l": [1, "a"]},
    {"b": False, "i": -(2**63), "f": 3, "s": "", "raw": b"", "at": NAIVE, "o": {"k": [1, None]}},
    {"i": 2**63 - 1, "none": None, "_error": "boom"},
]
STAMPS = [1_700_000_000.1234565, 1_700_000_001.9999996, 0.5]


def records(table: str) -> list[Record]:
    return [
        Record(f"id-{n}", table, data, ts, "host", 10 + n, "job" if n else None)
        for n, (data, ts) in enumerate(zip(VALUES, STAMPS, strict=True))
    ]


def raw_rows(engine: sa.Engine, table: str) -> list[tuple]:
    """Rows as the database driver returns them (text, not SQLAlchemy's processed values)."""
    with engine.connect() as conn:
        sql = f'SELECT * FROM "{table}" ORDER BY "_id"'  # noqa: S608 - test table names
        return [tuple(row) for row in conn.exec_driver_sql(sql)]


@pytest.fixture(params=["sqlite_url", pytest.param("pg_url", marks=pytest.mark.postgres)])
def engine(request) -> sa.Engine:
    engine = make_engine(request.getfixturevalue(request.param))
    yield engine
    engine.dispose()


def test_fast_path_stores_what_the_generic_insert_stores(engine) -> None:
    Store(engine, Schema()).write([Record("seed", "fast", {})])  # create both tables
    Store(engine, Schema()).write([Record("seed", "slow", {})])
    fast, generic = writers_for(engine.dialect)
    assert type(fast) is not Writer and type(generic) is Writer
    assert Store(engine, Schema()).write(records("fast") + records("slow")) == []
    schema = Schema()
    with engine.begin() as conn:
        schema.load(conn)
        conn.exec_driver_sql('DELETE FROM "fast"')
        conn.exec_driver_sql('DELETE FROM "slow"')
        fast.insert(conn, schema.tables["fast"], records("fast"))
        generic.insert(conn, schema.tables["slow"], records("slow"))
    stored = raw_rows(engine, "fast")
    assert stored == raw_rows(engine, "slow")
    assert [row[0] for row in stored] == ["id-0", "id-1", "id-2"]


def test_redelivered_records_are_stored_once(engine) -> None:
    store = Store(engine, Schema())
    first = records("results")
    assert store.write(first[:2]) == []
    assert store.write(first) == []  # two already there: only id-2 is new
    assert [row[0] for row in raw_rows(engine, "results")] == ["id-0", "id-1", "id-2"]


def test_an_out_of_range_int_is_refused_after_its_shape_was_accepted(engine) -> None:
    store = Store(engine, Schema())
    assert store.write([Record("a", "results", {"x": 1})]) == []
    big = Record("b", "results", {"x": 2**70})
    assert store.write([big]) == [(0, f"column 'x': integer {2**70} is outside the 64-bit range")]
    assert [row[0] for row in raw_rows(engine, "results")] == ["a"]


@pytest.mark.postgres
def test_a_row_postgresql_refuses_in_copy_is_isolated(pg_url) -> None:
    engine = make_engine(pg_url)
    store = Store(engine, Schema())
    good = [Record(f"g{i}", "results", {"s": f"ok {i}"}) for i in range(5)]
    bad = Record("bad", "results", {"s": "nul \x00 byte"})
    refused = store.write([*good[:2], bad, *good[2:]])
    assert [index for index, _reason in refused] == [2]
    assert "database refused the row" in refused[0][1]
    assert [row[0] for row in raw_rows(engine, "results")] == [f"g{i}" for i in range(5)]
    engine.dispose()
