"""A rerun under the same key: a success replaces a stored failure, nothing else replaces a row."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from collector.daemon import Collector
from collector.db import make_engine
from collector.store import Schema
from collector.store.writers import Writer
from tests.helpers import drain, rows
from workers import Emitter
from workers.record import Record


def rounds(emitter: Emitter, collector: Collector, *batches: list[dict]) -> None:
    """Each list is emitted as one batch (key "k"), then drained."""
    for batch in batches:
        for data in batch:
            emitter.emit(data, key="k")
        drain(collector)


def other_row_first(emitter: Emitter, collector: Collector) -> None:
    """Another key's row first, so the table has every column before key "k" arrives."""
    emitter.emit({"x": 0, "K": 0.0}, key="other")
    drain(collector)


FAIL = {"x": 1, "_error": "RuntimeError: did not converge"}
OK = {"x": 1, "K": 2.5}


def check(db_url: str, x: int, k: float | None, error: str | None) -> None:
    (row,) = [r for r in rows(db_url, "results") if r["_id"] != "other"]
    assert (row["_id"], row["x"], row["K"], row["_error"]) == ("k", x, k, error)


@pytest.fixture
def pair(db_url, settings, fake_redis):
    collector = Collector(replace(settings, db_url=db_url), client=fake_redis)
    collector.start()
    yield Emitter(queue=settings.queue, client=fake_redis), collector
    collector.close()


def test_success_replaces_a_stored_failure(pair, db_url) -> None:
    emitter, collector = pair
    other_row_first(emitter, collector)
    rounds(emitter, collector, [FAIL], [OK])
    check(db_url, 1, 2.5, None)


def test_neither_a_failure_nor_a_second_success_replaces_a_success(pair, db_url) -> None:
    emitter, collector = pair
    rounds(emitter, collector, [OK], [FAIL], [{"x": 9, "K": 9.0}])
    check(db_url, 1, 2.5, None)


def test_a_second_failure_keeps_the_first(pair, db_url) -> None:
    emitter, collector = pair
    other_row_first(emitter, collector)
    rounds(emitter, collector, [FAIL], [{**FAIL, "x": 7, "_error": "no"}])
    check(db_url, 1, None, "RuntimeError: did not converge")


def test_within_one_batch_the_success_wins(pair, db_url) -> None:
    emitter, collector = pair
    rounds(emitter, collector, [FAIL, OK, {**FAIL, "x": 3}])
    check(db_url, 1, 2.5, None)


def test_the_generic_insert_follows_the_same_rule(sqlite_url) -> None:
    """The path the fast writers do not cover: SQLAlchemy's own upsert (tables with Python-side
    defaults)."""
    engine = make_engine(sqlite_url)
    table = sa.Table(
        "results", sa.MetaData(), sa.Column("_id", sa.String, primary_key=True),
        sa.Column("_error", sa.Text), sa.Column("x", sa.BigInteger), sa.Column("K", sa.Float),
    )  # fmt: skip
    table.create(engine)
    schema = Schema()
    with engine.connect() as conn:
        schema.load(conn)
    info = schema.tables["results"]
    writer = Writer(engine.dialect)
    for data in (FAIL, {**FAIL, "x": 5}, OK, {"x": 9, "K": 9.0}):
        with engine.begin() as conn:
            writer.insert(conn, info, [Record("k", "results", data)])
    engine.dispose()
    check(sqlite_url, 1, 2.5, None)


def test_success_with_new_columns_replaces_a_failure(pair, db_url) -> None:
    emitter, collector = pair
    rounds(emitter, collector, [FAIL], [OK])  # OK adds the column K to the failure's table
    check(db_url, 1, 2.5, None)
