"""Schema changes racing a peer collector on the databases several collectors share: a column a
peer added first with another type, and an int no float holds committed by a peer while its
column is being widened. Either way no value is stored altered."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from collector.db import make_engine
from collector.dialects import mysql
from collector.store import Schema, Store, ddl
from tests.helpers import typed_rows
from workers.record import Record

SHARED = [
    pytest.param("pg_url", marks=pytest.mark.postgres),
    pytest.param("mysql_url", marks=pytest.mark.mysql),
]
BIG = 2**53 + 1  # no float holds it


@pytest.mark.mysql
def test_a_column_a_peer_added_first_with_another_type_is_not_filled_blindly(
    mysql_url, monkeypatch
) -> None:
    """MariaDB's ADD COLUMN IF NOT EXISTS skips a column a peer made a moment before, whatever
    its type: our ints and floats must not go into the peer's text column as text."""
    engine, peer = make_engine(mysql_url), make_engine(mysql_url)
    store = Store(engine, Schema())
    assert store.write([Record("a", "t", {"x": 1})]) == []
    add_column = mysql.MySQL.add_column

    def peer_first(self, conn, table, column, kind) -> None:  # type: ignore[no-untyped-def]
        monkeypatch.setattr(mysql.MySQL, "add_column", add_column)
        assert Store(peer, Schema()).write([Record("p", "t", {column: "peer text"})]) == []
        add_column(self, conn, table, column, kind)

    monkeypatch.setattr(mysql.MySQL, "add_column", peer_first)
    batch = [Record("b", "t", {"x": 2, "y": 5}), Record("c", "t", {"x": 3, "y": 1.5})]
    assert store.write(batch) == [
        (0, "column 'y' holds str values, this record has int"),
        (1, "column 'y' holds str values, this record has float"),
    ]
    engine.dispose()
    peer.dispose()
    assert [(r["_id"], r["y"]) for r in typed_rows(mysql_url, "t")] == [
        ("a", None), ("p", "peer text")
    ]  # fmt: skip


@pytest.mark.parametrize("fixture", SHARED)
def test_an_int_a_peer_commits_while_its_column_widens_is_not_rounded(request, fixture) -> None:
    """A peer's transaction holding an int no float holds, committed after our check of the
    column but before our ALTER: the widening must see it and refuse, not round it."""
    url = request.getfixturevalue(fixture)
    engine, peer = make_engine(url), make_engine(url)
    store = Store(engine, Schema())
    assert store.write([Record("a", "w", {"x": 1})]) == []
    table = sa.Table("w", sa.MetaData(), autoload_with=peer)
    with peer.connect() as other:
        pending = other.begin()
        other.execute(table.insert().values(_id="big", x=BIG, _ts=sa.func.now()))
        committer = threading.Thread(target=lambda: (time.sleep(1.0), pending.commit()))
        committer.start()
        refused = store.write([Record("f", "w", {"x": 0.5})])
        committer.join()
    engine.dispose()
    peer.dispose()
    assert refused == [
        (0, f"column 'x' holds integer {BIG}, which no float holds exactly: it cannot widen "
            "to float")
    ]  # fmt: skip
    assert [(r["_id"], r["x"]) for r in typed_rows(url, "w")] == [("a", 1), ("big", BIG)]


@pytest.mark.parametrize("fixture", SHARED)
def test_an_int_for_a_column_a_peer_widened_since_is_refused_not_rounded(request, fixture) -> None:
    """The schema this collector cached says int; a peer has widened the column to float
    since: an int no float holds must be refused, not rounded into the float column."""
    url = request.getfixturevalue(fixture)
    engine, peer = make_engine(url), make_engine(url)
    store = Store(engine, Schema())
    assert store.write([Record("a", "w", {"x": 1})]) == []
    assert store.write([Record("b", "w", {"x": 2})]) == []  # the column's type now cached
    assert Store(peer, Schema()).write([Record("p", "w", {"x": 0.5})]) == []  # widened
    refused = store.write([Record("big", "w", {"x": BIG}), Record("ok", "w", {"x": 3})])
    engine.dispose()
    peer.dispose()
    assert refused == [(0, f"column 'x': integer {BIG} has no exact float value")]
    assert [(r["_id"], r["x"]) for r in typed_rows(url, "w")] == [
        ("a", 1.0), ("b", 2.0), ("ok", 3.0), ("p", 0.5)
    ]  # fmt: skip


@pytest.mark.mysql
def test_a_batch_racing_peers_twice_is_planned_again_not_dead_lettered(
    mysql_url, monkeypatch
) -> None:
    """A peer creates the table first, then another adds the batch's new column as float: each
    race is seen and the batch planned again; its int fits the float column and is stored."""
    engine, peer = make_engine(mysql_url), make_engine(mysql_url)
    store = Store(engine, Schema())
    peers = [{"x": 1}, {"y": 0.5}]
    apply = ddl.apply

    def racing(conn, plan, schema) -> None:  # type: ignore[no-untyped-def]
        if peers and conn.engine is engine:  # our attempts only, not the peers'
            assert Store(peer, Schema()).write([Record(f"p{len(peers)}", "t", peers.pop(0))]) == []
        apply(conn, plan, schema)

    monkeypatch.setattr(ddl, "apply", racing)
    assert store.write([Record("r", "t", {"x": 2, "y": 3})]) == []
    engine.dispose()
    peer.dispose()
    assert [(r["_id"], r["x"], r["y"]) for r in typed_rows(mysql_url, "t")] == [
        ("p1", None, 0.5), ("p2", 1, None), ("r", 2, 3.0)
    ]  # fmt: skip


def test_a_model_column_the_database_holds_as_numeric_takes_big_ints(sqlite_url) -> None:
    """A model's table is never widened, so its big ints are not checked against a peer's
    widening: a BigInteger declared over a NUMERIC column stores 2**60 + 1 as before."""
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE m ("_id" VARCHAR(64) PRIMARY KEY, "n" NUMERIC)')
    declared = sa.MetaData()
    sa.Table("m", declared, sa.Column("_id", sa.String(64), primary_key=True),
             sa.Column("n", sa.BigInteger))  # fmt: skip
    store = Store(engine, Schema(declared))
    assert store.write([Record("k", "m", {"n": 2**60 + 1})]) == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql('SELECT "n" FROM m').scalar() == 2**60 + 1
    engine.dispose()
