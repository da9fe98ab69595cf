"""``Store.added`` (what the daemon counts as stored) is the rows a write committed: a record
whose ``_id`` the table already had (a redelivery, a job sent twice) adds nothing, on every
insert path of SQLite and PostgreSQL, through refusals and bisection alike."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from collector.daemon import Collector
from collector.store import Store
from collector.store.schema import Schema
from tests.helpers import drain, rows
from workers import Emitter
from workers.record import Record

KEYS = st.sampled_from([f"k{i}" for i in range(6)])
VALUES = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b"]))  # text after int: refused
BATCHES = st.lists(st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=8), max_size=5)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}" if request.param == "sqlite" else None
    url = url or request.getfixturevalue("pg_url")
    made = sa.create_engine(url)
    yield made
    made.dispose()


@pytest.mark.parametrize("path", ["fast", "generic"])
@hsettings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=BATCHES)
def test_added_is_the_rows_a_write_committed(engine, path, batches) -> None:
    table = f"t{uuid.uuid4().hex[:10]}"
    store = Store(engine, Schema())
    if path == "generic":
        store._fast = store._generic
    added = 0
    for batch in batches:
        store.write([Record(key, table, {"x": value}) for key, value in batch])
        added += store.added
    with engine.connect() as conn:
        count = sa.select(sa.func.count()).select_from(sa.table(table))
        present = conn.execute(count).scalar() if batches else 0
    assert added == present


def test_a_record_sent_again_is_not_counted_stored_again(settings, fake_redis) -> None:
    emit = Emitter(queue=settings.queue, client=fake_redis)
    for _ in range(3):  # a job that sent its result again (or a redelivered entry)
        emit.emit({"x": 1}, table="t", key="same")
    emit.emit({"x": 2}, table="t", key="other")
    collector = Collector(settings, client=fake_redis)
    collector.start()
    try:
        drain(collector)
        emit.emit({"x": 1}, table="t", key="same")  # in a later batch
        drain(collector)
    finally:
        collector.close()
    assert collector.counters.records == 5
    assert collector.counters.stored == len(rows(settings.db_url, "t")) == 2
