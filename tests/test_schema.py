"""Schema.plan, table-driven: which records fit (perhaps after staged DDL), which are refused
and why, and exactly the DDL a batch stages: every rule of collector/store/schema.py on its own,
against one loaded SQLite table and one declared (strict) model table."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from collector.db import make_engine
from collector.store import Schema
from workers.record import Record

DECLARED = sa.MetaData()
sa.Table(
    "model",
    DECLARED,
    sa.Column("_id", sa.String(255), primary_key=True),
    sa.Column("n", sa.Integer),
)


@pytest.fixture
def schema(sqlite_url) -> Schema:
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE "t" ("_id" VARCHAR(255) PRIMARY KEY, "_ts" DATETIME, "_host" TEXT, '
            '"_pid" INTEGER, "_job" TEXT, "_elapsed" FLOAT, "_maxrss" BIGINT, "_error" TEXT, '
            '"x" BIGINT, "s" TEXT, "f" FLOAT)'
        )
        DECLARED.create_all(conn)
        found = Schema(DECLARED)
        found.load(conn)
    engine.dispose()
    return found


def rec(table: str, **data: object) -> Record:
    return Record("id", table, data)


CASES = {  # records -> (refused positions and reasons, new tables, new columns, widened)
    "known columns, fitting values": (
        [rec("t", x=1, s="a", f=2), rec("t", x=None, f=1.5)], {}, {}, {}, {},
    ),
    "a new table, typed from the first values": (
        [rec("fresh", a=1, b="x", c=True, d=b"", e=[1], g={"k": 1})], {},
        {"fresh": {"a": "int", "b": "str", "c": "bool", "d": "bytes", "e": "json", "g": "json"}},
        {}, {},
    ),
    "a new column, then a float widens it before it exists": (
        [rec("t", y=1), rec("t", y=2.5)], {}, {}, {"t": {"y": "float"}}, {},
    ),
    "an int column meets a float: widened": ([rec("t", x=2.5)], {}, {}, {}, {"t": {"x"}}),
    "a type conflict": (
        [rec("t", x="text")], {0: "column 'x' holds int values, this record has str"}, {}, {}, {},
    ),
    "a conflict with a column staged earlier in the batch": (
        [rec("t", y=1), rec("t", y="s")],
        {1: "column 'y' holds int values, this record has str"}, {}, {"t": {"y": "int"}}, {},
    ),
    "names that differ only in case": (
        [rec("t", X=1), rec("T", x=1), rec("new", a=1), rec("NEW", a=1)],
        {
            0: "column name 'X' clashes with column 'x' (names ignore case in SQL)",
            1: "table name 'T' clashes with existing table 't'",
            3: "table name 'NEW' clashes with existing table 'new'",
        },
        {"new": {"a": "int"}}, {}, {},
    ),
    "SQL keywords are ordinary names": (
        [rec("order", select=1, nothing="n")], {}, {"order": {"select": "int", "nothing": "str"}},
        {}, {},
    ),
    "a table SQLite reserves": (
        [rec("sqlite_x", a=1)],
        {0: "table name 'sqlite_x': SQLite reserves names starting with 'sqlite_'"}, {}, {}, {},
    ),
    "out of the 64-bit range": (
        [rec("t", x=2**63)], {0: f"column 'x': integer {2**63} is outside the 64-bit range"},
        {}, {}, {},
    ),
    "a declared table is strict": (
        [rec("model", n=1), rec("model", n=1.5), rec("model", other=1)],
        {
            1: "column 'n' holds int values, this record has float",
            2: "table 'model' is declared by the models module and has no column 'other'",
        },
        {}, {}, {},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_plan(schema: Schema, case: str) -> None:
    records, refused, new_tables, new_columns, widened = CASES[case]
    plan = schema.plan(records)
    assert dict(plan.rejected) == refused
    assert plan.accepted == [i for i in range(len(records)) if i not in refused]
    assert plan.new_tables == new_tables
    assert {t: c for t, c in plan.new_columns.items() if c} == new_columns
    assert {t: w for t, w in plan.widen.items() if w} == widened
