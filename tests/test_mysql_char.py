"""A model's CHAR(n) column on MySQL/MariaDB: the server pads it with spaces and strips
trailing spaces as it is read, so a string ending in a space is refused with a reason, never
stored to come back shorter; any other string fits as it is."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.db import make_engine
from collector.dialects import mysql
from collector.store import Schema, Store
from workers.record import Record

pytestmark = pytest.mark.mysql


@pytest.fixture
def chars(mysql_url):
    """A Store over a declared table with a CHAR(5) and an NCHAR(5) column, guarded."""
    engine = make_engine(mysql_url)
    declared = sa.MetaData()
    table = sa.Table(
        "c", declared, sa.Column("_id", sa.String(64), primary_key=True),
        sa.Column("_ts", sa.DateTime), sa.Column("code", sa.CHAR(5)),
        sa.Column("ncode", sa.NCHAR(5)),
    )  # fmt: skip
    with engine.begin() as conn:
        mysql.DIALECT.create_exact(conn, table)
        declared.create_all(conn)
        present = {c["name"]: c["type"] for c in sa.inspect(conn).get_columns("c")}
        mysql.DIALECT.guard_model(conn, table, present)
    yield engine, Store(engine, Schema(declared))
    engine.dispose()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(st.sampled_from(" ab\té"), max_size=5), column=st.sampled_from(["code", "ncode"])
)
def test_a_char_column_stores_a_string_exactly_or_refuses_it(chars, text, column) -> None:
    engine, store = chars
    refused = store.write([Record("k", "c", {column: text})])
    with engine.begin() as conn:
        back = conn.execute(sa.select(sa.column(column)).select_from(sa.table("c"))).scalars().all()
        conn.execute(sa.text("DELETE FROM c"))
    if text.endswith(" "):
        assert refused == [
            (0, f"cannot store the row: column {column!r} is CHAR(5): {text!r} ends in a space, "
                "which the server strips as the value is read (make it VARCHAR(5))")
        ]  # fmt: skip
        assert back == []
    else:
        assert (refused, back) == ([], [text])
