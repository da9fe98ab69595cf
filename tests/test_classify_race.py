"""A peer collector's DDL racing ours is retried, not blamed on a record (two collectors on
one PostgreSQL database creating the same table at once)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from collector.db import make_engine
from collector.store import ddl
from collector.store.classify import Fault, classify
from collector.store.schema import Schema
from collector.store.store import Store
from workers.record import Record


class PgError(Exception):
    def __init__(self, sqlstate: str, text: str) -> None:
        super().__init__(text)
        self.sqlstate = sqlstate


def error(sqlstate: str, text: str) -> sa_exc.DBAPIError:
    return sa_exc.IntegrityError("CREATE TABLE t (...)", {}, PgError(sqlstate, text))


@pytest.mark.parametrize(
    ("sqlstate", "text", "fault"),
    [
        ("23505", 'duplicate key value violates unique constraint "pg_type_typname_nsp_index"',
         Fault.UNKNOWN),
        ("42P07", 'relation "t" already exists', Fault.STALE),  # a peer's, or an index's name
        ("42701", 'column "x" of relation "t" already exists', Fault.STALE),
        ("23505", 'duplicate key value violates unique constraint "t__id_key"', Fault.RECORDS),
    ],
)  # fmt: skip
def test_concurrent_ddl_is_retried_other_violations_stay_records(sqlstate, text, fault) -> None:
    assert classify(error(sqlstate, text)) is fault


@pytest.mark.postgres
@pytest.mark.parametrize("change", ["table", "column"])
def test_ddl_a_peer_committed_after_we_read_the_schema_is_retried(pg_url, monkeypatch, change):
    """The peer's CREATE TABLE (or ADD COLUMN) commits between our reading the schema and our
    own DDL: ours fails with "already exists", and the single record is stored, not refused."""
    engine = make_engine(pg_url)
    ours, peer = Store(engine, Schema()), Store(engine, Schema())
    if change == "column":
        assert ours.write([Record("old", "results", {"x": 0})]) == []
        assert peer.write([Record("old2", "results", {"x": 0})]) == []
    real_apply = ddl.apply

    def peer_commits_first(conn, plan, schema) -> None:
        monkeypatch.setattr(ddl, "apply", real_apply)  # the peer's DDL runs unhindered
        assert peer.write([Record("theirs", "results", {"x": 1, "y": 1})]) == []
        real_apply(conn, plan, schema)  # ours now finds the table or column there

    monkeypatch.setattr(ddl, "apply", peer_commits_first)
    assert ours.write([Record("ours", "results", {"x": 2, "y": 2})]) == []
    assert ddl.apply is real_apply  # the race did happen
    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT _id, y FROM results ORDER BY _id")).all()
    engine.dispose()
    assert [tuple(r) for r in got if r[0] in ("ours", "theirs")] == [("ours", 2), ("theirs", 1)]
