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
from collector.store import Schema, Store
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
