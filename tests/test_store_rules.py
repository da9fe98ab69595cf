"""The store's rules on every database: a batch that adds and widens keeps every value, no
value is silently dropped, the first emitted row stays under a key (a success still replaces a
failure), a missing or None list/dict value is SQL NULL, and ``added`` counts new rows only."""

from __future__ import annotations

import math
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.db import make_engine
from collector.store import Schema, Store
from collector.store.columns import plain_floats
from collector.store.writers import MissingColumn, writers_for
from workers.record import Record

T0 = 1_700_000_000.0


REFUSED_ZERO = {  # the databases that cannot store -0.0 in a float column, and their reason
    "sqlite": "SQLite stores negative zero as 0.0 (send 0.0)",
    "mysql": "MySQL and MariaDB store negative zero as 0.0 (send 0.0)",
}


@pytest.fixture
def engine(db_url: str):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def rows(engine: sa.Engine, table: str) -> list[dict]:
    with engine.connect() as conn:
        found = sa.Table(table, sa.MetaData(), autoload_with=conn)
        return [dict(r) for r in conn.execute(sa.select(found).order_by(found.c._id)).mappings()]


def data(engine: sa.Engine, table: str, *columns: str) -> list[tuple]:
    return [tuple(r[c] for c in ("_id", *columns)) for r in rows(engine, table)]


@pytest.mark.parametrize("together", [False, True], ids=["two-records", "one-record"])
def test_a_batch_that_adds_a_column_and_widens_another_keeps_every_value(engine, together) -> None:
    store = Store(engine, Schema())
    assert store.write([Record("a", "t", {"v": 1})]) == []
    batch = [Record("b", "t", {"v": 1.5, "w": "new"})]
    if not together:
        batch = [Record("b", "t", {"v": 1.5}), Record("c", "t", {"w": "new"})]
    assert store.write(batch) == []
    expected = [("a", 1.0, None), ("b", 1.5, "new")]
    if not together:
        expected = [("a", 1.0, None), ("b", 1.5, None), ("c", None, "new")]
    assert data(engine, "t", "v", "w") == expected


def test_an_insert_never_drops_a_value_whose_key_has_no_column(engine) -> None:
    store = Store(engine, Schema())
    assert store.write([Record("a", "t", {"v": 1})]) == []
    info = store.schema.tables["t"]
    for name, writer in zip("fg", writers_for(engine.dialect), strict=True):
        with engine.begin() as conn:  # None has no column to need: stored as absent
            assert writer.insert(conn, info, [Record(name, "t", {"v": 2, "w": None})]) == 1
        with pytest.raises(MissingColumn, match="no column 'w'"), engine.begin() as conn:
            writer.insert(conn, info, [Record("m", "t", {"v": 3, "w": 0})])
    assert data(engine, "t", "v") == [("a", 1), ("f", 2), ("g", 2)]


def emitted(at: float, error: str | None = None, **values: object) -> Record:
    fields = {**values, **({"_error": error} if error else {})}
    return Record("k", "results", fields, ts=T0 + at)


# (the records under one key in emit order, the one the row must hold); each case is written
# in every arrival order, one record per batch and all in one batch
RULE = {
    "two successes: the first emitted": ([emitted(1, x=1), emitted(2, x=2)], 0),
    "two failures: the first emitted": ([emitted(1, "a", x=1), emitted(2, "b", x=2)], 0),
    "a later success replaces a failure": ([emitted(1, "a", x=1), emitted(2, x=2)], 1),
    "an earlier success stays before a failure": ([emitted(1, x=1), emitted(2, "b", x=2)], 0),
}


@pytest.mark.parametrize("together", [False, True], ids=["batches", "one-batch"])
@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
@pytest.mark.parametrize("case", RULE)
def test_the_row_under_a_key_is_the_first_emitted_whatever_the_arrival(
    engine, case, reverse, together
) -> None:
    records, winner = RULE[case]
    arrival = list(reversed(records)) if reverse else records
    store = Store(engine, Schema())
    assert store.write([Record("other", "results", {"x": 0})]) == []  # every column exists
    batches = [arrival] if together else [[rec] for rec in arrival]
    for batch in batches:
        assert store.write(batch) == []
    (row,) = [r for r in rows(engine, "results") if r["_id"] == "k"]
    expected = records[winner]
    assert (row["x"], row["_error"]) == (expected.data["x"], expected.data.get("_error"))


@pytest.mark.postgres
def test_a_peer_that_commits_a_later_record_first_yields_to_the_first_emitted(pg_url) -> None:
    """Two collectors: the first record's reader dies before its commit, its peer stores the
    second record of the key; the first, redelivered to the peer, takes the row."""
    first, second = make_engine(pg_url), make_engine(pg_url)
    dying, peer = Store(first, Schema()), Store(second, Schema())
    assert peer.write([Record("other", "results", {"x": 0})]) == []
    early, late = emitted(1, x=1), emitted(2, x=2)
    with first.connect() as conn:  # the dying collector's transaction, never committed
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("INSERT INTO results (_id, x) VALUES ('k', 1)")
        conn.exec_driver_sql("ROLLBACK")
    first.dispose()
    assert peer.write([late]) == [] and peer.added == 1
    assert peer.write([early]) == [] and peer.added == 0  # the redelivery replaces, adds none
    assert data(second, "results", "x") == [("k", 1), ("other", 0)]
    dying.close()
    peer.close()


def declared_with_default() -> sa.MetaData:
    """A model table with a Python-side default: the generic insert's path."""
    declared = sa.MetaData()
    sa.Table(
        "results", declared, sa.Column("_id", sa.String(255), primary_key=True),
        sa.Column("_ts", sa.DateTime), sa.Column("_error", sa.Text),
        sa.Column("j", sa.JSON), sa.Column("d", sa.JSON), sa.Column("n", sa.Integer, default=7),
    )  # fmt: skip
    return declared


@pytest.mark.parametrize("path", ["fast", "generic"])
def test_a_missing_or_none_list_or_dict_is_sql_null(engine, path) -> None:
    declared = declared_with_default() if path == "generic" else None
    if declared is not None:
        declared.create_all(engine)
    store = Store(engine, Schema(declared))
    batch = [
        Record("a", "results", {"j": [1, None], "d": {"k": None}}),
        Record("b", "results", {"j": None, "d": None}),
        Record("c", "results", {}),
        Record("e", "results", {"j": [], "d": {}}),
    ]
    assert store.write(batch) == []
    with engine.connect() as conn:
        for column in ("j", "d"):
            nulls = conn.exec_driver_sql(
                f'SELECT "_id" FROM "results" WHERE "{column}" IS NULL ORDER BY 1'  # noqa: S608
            )
            assert [r[0] for r in nulls] == ["b", "c"], column
    assert data(engine, "results", "j", "d") == [
        ("a", [1, None], {"k": None}), ("b", None, None), ("c", None, None), ("e", [], {}),
    ]  # fmt: skip


@pytest.mark.parametrize("path", ["fast", "generic"])
def test_added_counts_only_rows_the_table_did_not_have(engine, path) -> None:
    declared = declared_with_default() if path == "generic" else None
    if declared is not None:
        declared.create_all(engine)
    store = Store(engine, Schema(declared))
    batch = [Record(f"k{i}", "results", {"n": i}, ts=T0 + i) for i in range(5)]
    assert store.write(batch[:3]) == [] and store.added == 3
    assert store.write(batch) == [] and store.added == 2  # a redelivery with two new
    assert store.write(batch) == [] and store.added == 0
    failed = Record("f", "results", {"n": 1, "_error": "boom"}, ts=T0)
    assert store.write([failed]) == [] and store.added == 1
    fixed = Record("f", "results", {"n": 2}, ts=T0 + 1)
    assert store.write([fixed, Record("g", "results", {"n": 3})]) == []
    assert store.added == 1  # the success replaced a row the table had: only g is new
    assert data(engine, "results", "n", "_error")[0] == ("f", 2, None)
    with engine.connect() as conn:
        assert conn.exec_driver_sql('SELECT count(*) FROM "results"').scalar() == 7
    store.close()


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[tuple[int, bool]], list[int], list[int]]:
    """Records of one key as (emit time, failed), distinct times; an arrival order; batch cuts."""
    times = draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=6, unique=True))
    emitted = [(t, draw(st.booleans())) for t in times]
    order = draw(st.permutations(range(len(emitted))))
    cuts = draw(st.lists(st.integers(1, len(emitted)), max_size=3))
    return emitted, order, sorted(set(cuts))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=arrivals())
def test_any_arrival_in_any_batches_ends_with_the_rule_s_row(engine, case) -> None:
    """The row is the earliest success, else the earliest failure, however the records of the
    key arrive and however they are cut into batches."""
    emitted, order, cuts = case
    key = uuid.uuid4().hex
    records = [
        Record(key, "rule", {"x": t, **({"_error": "boom"} if failed else {})}, ts=T0 + t / 1e3)
        for t, failed in emitted
    ]
    arrived = [records[i] for i in order]
    store = Store(engine, Schema())
    for start, end in zip([0, *cuts], [*cuts, len(arrived)], strict=True):
        if start < end:
            assert store.write(arrived[start:end]) == []
    successes = [t for t, failed in emitted if not failed]
    winner = min(successes) if successes else min(t for t, _ in emitted)
    with engine.connect() as conn:
        query = 'SELECT "x" FROM "rule" WHERE "_id" = :k'
        assert conn.execute(sa.text(query), {"k": key}).scalar_one() == winner


@pytest.mark.parametrize("known", [False, True], ids=["new column", "known column"])
def test_negative_zero_in_a_float_column_is_kept_or_refused_never_made_zero(engine, known) -> None:
    store = Store(engine, Schema())
    if known:
        assert store.write([Record("before", "z", {"x": 0.5})]) == []
    refused = store.write([Record("neg", "z", {"x": -0.0}), Record("pos", "z", {"x": 0.0})])
    kept = {rid: math.copysign(1.0, x) for rid, x in data(engine, "z", "x") if x == 0}
    if refused:  # a database that cannot hold it says so, and stores the record's neighbour
        assert refused == [(0, f"column 'x': -0.0: {REFUSED_ZERO[engine.dialect.name]}")]
        assert kept == {"pos": 1.0}
    else:
        assert kept == {"neg": -1.0, "pos": 1.0}


ODD = [math.nan, math.inf, -math.inf, -0.0]  # the floats a database may not store as they are


@given(
    st.lists(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=2)
        | st.floats(-1e300, 1e300) | st.sampled_from(ODD) | st.lists(st.sampled_from(ODD)),
        max_size=8,
    )
)  # fmt: skip
def test_plain_floats_finds_every_nan_infinity_and_negative_zero(values: list) -> None:
    odd = [v for v in values if type(v) is float and (v != v or abs(v) == math.inf or (
        v == 0 and math.copysign(1.0, v) < 0))]  # fmt: skip
    assert plain_floats(values) is (not odd)  # inside a list (JSON) they are not the column's
