"""Ints meeting float columns on every database: an int no float holds exactly is refused with a
reason, never stored rounded, whether it goes into a float column, sits in an int column that a
float would widen, arrives in the batch that widens, or comes under a key that has a row."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.daemon import Collector
from collector.db import make_engine
from collector.settings import Settings
from collector.store import Schema, Store, ddl
from tests.helpers import drain
from workers import Emitter, Record

T0 = 1_700_000_000.0
INEXACT = [2**53 + 1, 2**63 - 1, -(2**53) - 1, -(2**53) - 3, 2**62 + 1]
EXACT = [2**53, -(2**53), 2**60, -(2**63), 2**63 - 1024, 0, 12345]


@pytest.fixture
def engine(db_url: str):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def rec(rid: str, table: str, data: dict, ts: float = T0) -> Record:
    return Record(rid, table, data, ts=ts)


def column(engine: sa.Engine, table: str, name: str) -> dict:
    """_id -> the stored value of column ``name``, with its Python type as the driver gives it."""
    with engine.connect() as conn:
        found = sa.Table(table, sa.MetaData(), autoload_with=conn)
        return {r._id: r[1] for r in conn.execute(sa.select(found.c._id, found.c[name]))}


def float_reason(value: int) -> str:
    return f"column 'w': integer {value} has no exact float value"


def widen_reason(value: int) -> str:
    return (
        f"column 'w' holds integer {value}, which no float holds exactly: it cannot widen to float"
    )


@pytest.mark.parametrize("value", INEXACT)
def test_an_int_no_float_holds_is_refused_by_a_float_column(engine, value: int) -> None:
    store = Store(engine, Schema())
    assert store.write([rec("a", "t", {"w": 0.5})]) == []
    assert store.write([rec("b", "t", {"w": value}), rec("c", "t", {"w": 2.5})]) == [
        (0, float_reason(value))
    ]
    assert store.write([rec("d", "t", {"w": value})]) == [(0, float_reason(value))]  # cached
    assert column(engine, "t", "w") == {"a": 0.5, "c": 2.5}


@pytest.mark.parametrize("value", EXACT)
def test_an_int_a_float_holds_exactly_goes_into_a_float_column(engine, value: int) -> None:
    store = Store(engine, Schema())
    assert store.write([rec("a", "t", {"w": 0.5})]) == []
    assert store.write([rec("b", "t", {"w": value})]) == []
    assert column(engine, "t", "w") == {"a": 0.5, "b": float(value)}
    assert column(engine, "t", "w")["b"] == value


@pytest.mark.parametrize("value", INEXACT)
def test_an_int_column_holding_an_int_no_float_holds_is_not_widened(engine, value: int) -> None:
    store = Store(engine, Schema())
    assert store.write([rec("a", "t", {"w": value}), rec("b", "t", {"w": 1})]) == []
    assert store.write([rec("c", "t", {"w": 1.5}), rec("d", "t", {"w": 2})]) == [
        (0, widen_reason(value))
    ]
    assert column(engine, "t", "w") == {"a": value, "b": 1, "d": 2}
    assert all(type(v) is int for v in column(engine, "t", "w").values())


def test_an_int_column_of_exact_ints_still_widens(engine) -> None:
    store = Store(engine, Schema())
    assert store.write([rec("a", "t", {"w": 2**60}), rec("b", "t", {"w": -(2**53)})]) == []
    assert store.write([rec("c", "t", {"w": 1.5})]) == []
    assert column(engine, "t", "w") == {"a": 2.0**60, "b": -(2.0**53), "c": 1.5}


@pytest.mark.parametrize("table_exists", [False, True], ids=["new-table", "int-column"])
@pytest.mark.parametrize("order", ["int-first", "float-first"])
def test_a_batch_that_widens_and_holds_an_inexact_int(engine, table_exists, order) -> None:
    """Sent one by one, the int first is stored and then the float cannot widen; the float
    first widens and then the int is refused: a batch ends the same."""
    value = 2**53 + 1
    store = Store(engine, Schema())
    if table_exists:
        assert store.write([rec("a", "t", {"w": 1})]) == []
    big, fraction = rec("b", "t", {"w": value}), rec("c", "t", {"w": 1.5})
    if order == "int-first":
        assert store.write([big, fraction]) == [(1, widen_reason(value))]
        expected = {"b": value}
    else:
        assert store.write([fraction, big]) == [(1, float_reason(value))]
        expected = {"c": 1.5}
    if table_exists:
        expected["a"] = 1
    assert column(engine, "t", "w") == expected


@pytest.mark.parametrize("stored", [0.5, 7], ids=["float-column", "int-column-widened"])
def test_under_a_key_that_has_a_row_an_inexact_int_is_refused(engine, stored) -> None:
    """Never neither stored nor refused: the conflict rule must not swallow it silently."""
    store = Store(engine, Schema())
    assert store.write([rec("k", "t", {"w": stored}, ts=T0 + 10)]) == []
    if stored == 7:
        assert store.write([rec("x", "t", {"w": 0.5})]) == []
    for ts in (T0, T0 + 20):  # emitted before the stored row (would replace it), and after
        assert store.write([rec("k", "t", {"w": 2**53 + 1}, ts=ts)]) == [
            (0, float_reason(2**53 + 1))
        ]
    assert column(engine, "t", "w")["k"] == stored


INTS = st.one_of(
    st.integers(-(2**53) - 64, -(2**53) + 64),
    st.integers(2**53 - 64, 2**53 + 64),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**63 - 1, -(2**63), 2**62 + 1, 2**60]),
)
SENT = st.lists(st.one_of(INTS, st.sampled_from([0.5, -2.25, 1e300])), min_size=1, max_size=8)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=SENT, second=SENT)
def test_every_int_into_float_columns_is_stored_exactly_or_refused(engine, first, second) -> None:
    """Two batches of ints and floats for one column (the first made by ints or floats, perhaps
    widened later): each record is stored with a value equal to what was sent, or refused with
    a reason; no stored value differs from its record's."""
    table = f"t{uuid.uuid4().hex[:10]}"
    store = Store(engine, Schema())
    sent: dict[str, int | float] = {}
    refused: dict[str, str] = {}
    for n, values in enumerate((first, second)):
        batch = [rec(f"{n}-{i}", table, {"w": v}) for i, v in enumerate(values)]
        for index, reason in store.write(batch):
            refused[batch[index].id] = reason
        sent.update({r.id: r.data["w"] for r in batch})
    held = column(engine, table, "w")  # the first record always makes the table
    assert held.keys() | refused.keys() == sent.keys()
    assert not held.keys() & refused.keys()
    for rid, value in held.items():
        assert value == sent[rid], rid  # Python compares int and float exactly
    for rid, reason in refused.items():
        assert reason.startswith("column 'w'"), reason
        assert type(sent[rid]) is int or "cannot widen" in reason, reason


@pytest.mark.parametrize("how", ["emit", "emit_many"])
def test_end_to_end_each_inexact_int_is_dead_lettered(db_url, fake_redis, queue, how) -> None:
    emitter = Emitter(queue=queue, client=fake_redis)
    emitter.emit({"w": 0.5}, table="t", key="k")
    collector = Collector(
        Settings(db_url=db_url, queue=queue, max_wait=0.05, consumer="test"), client=fake_redis
    )
    collector.start()
    try:
        assert drain(collector) == 1
        if how == "emit":
            ids = [emitter.emit({"w": v}, table="t") for v in INEXACT]
            ids.append(emitter.emit({"w": 2**53 + 1}, table="t", key="k"))
        else:
            ids = emitter.emit_many([{"w": v} for v in INEXACT], table="t")
        drain(collector)
    finally:
        collector.close()
    dead = {
        Record.decode(fields[b"m"]).id: fields[b"reason"].decode()
        for _, fields in fake_redis.xrange(f"{queue}:dead")
    }
    values = [*INEXACT, 2**53 + 1] if how == "emit" else INEXACT
    assert dead == {rid: float_reason(v) for rid, v in zip(ids, values, strict=True)}
    engine = make_engine(db_url)
    try:
        assert column(engine, "t", "w") == {"k": 0.5}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_an_int_a_peer_stores_after_the_plan_still_blocks_the_widening(pg_url, monkeypatch) -> None:
    """Two collectors: one plans to widen ``w`` while the other commits an int no float holds
    into it; the widening is refused, not run over the peer's row."""
    engine, peer = make_engine(pg_url), Store(make_engine(pg_url), Schema())
    store = Store(engine, Schema())
    assert store.write([rec("a", "t", {"w": 1})]) == []
    assert peer.write([rec("p0", "t", {"w": 2})]) == []  # the peer knows the table
    real_apply, raced = ddl.apply, []

    def peer_commits_first(conn, plan, schema) -> None:
        if not raced:
            raced.append(peer.write([rec("p", "t", {"w": 2**53 + 1})]))
        real_apply(conn, plan, schema)

    monkeypatch.setattr(ddl, "apply", peer_commits_first)
    try:
        assert store.write([rec("b", "t", {"w": 1.5})]) == [(0, widen_reason(2**53 + 1))]
        assert raced == [[]]
        assert column(engine, "t", "w") == {"a": 1, "p0": 2, "p": 2**53 + 1}
    finally:
        engine.dispose()
        peer.close()


def test_a_models_numeric_column_refuses_an_int_no_float_holds(engine) -> None:
    """A declared Numeric column counts as float: SQLite's goes through a float (it stored
    2**63 - 1 as 2**63), so an int no float holds is refused as in a Float column (on every
    database alike, though PostgreSQL's numeric would have held it)."""
    declared = sa.MetaData()
    sa.Table(
        "m", declared, sa.Column("_id", sa.String(255), primary_key=True),
        sa.Column("_ts", sa.DateTime), sa.Column("w", sa.Numeric(20, 0)),
    )  # fmt: skip
    declared.create_all(engine)
    store = Store(engine, Schema(declared))
    batch = [rec("a", "m", {"w": 2**63 - 1}), rec("b", "m", {"w": 2**53}), rec("c", "m", {"w": 3})]
    assert store.write(batch) == [
        (0, "column 'w': integer 9223372036854775807 has no exact float value")
    ]
    assert column(engine, "m", "w") == {"b": 2**53, "c": 3}
