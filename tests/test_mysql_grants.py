"""The grants docs/databases.md names for a MariaDB user are enough for everything the
collector does: a new table, a new column, a widening, a redelivered batch (the staged path)
and a success replacing a stored failure."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from collector.db import make_engine
from collector.store import Schema, Store
from tests.helpers import typed_rows
from workers.record import Record

pytestmark = pytest.mark.mysql
GRANTS = "SELECT, INSERT, UPDATE, CREATE, ALTER, CREATE TEMPORARY TABLES, LOCK TABLES"


@pytest.fixture
def granted(mysql_url) -> Iterator[str]:
    """The URL of a user of its own with exactly GRANTS on the test's database."""
    url = sa.engine.make_url(mysql_url)
    name = f"rc_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(mysql_url)
    with admin.begin() as conn:
        for host in ("%%", "localhost"):  # %% is % (the driver's paramstyle)
            conn.exec_driver_sql(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY 'pw'")
            conn.exec_driver_sql(f"GRANT {GRANTS} ON `{url.database}`.* TO '{name}'@'{host}'")
    yield url.set(username=name, password="pw").render_as_string(hide_password=False)
    with admin.begin() as conn:
        for host in ("%%", "localhost"):
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'{host}'")
    admin.dispose()


def test_the_documented_grants_are_enough(mysql_url, granted) -> None:
    engine = make_engine(granted)
    store = Store(engine, Schema())
    try:
        assert store.write([Record("a", "g", {"x": 1, "_error": "boom"})]) == []  # a table
        assert store.write([Record("b", "g", {"x": 2, "y": "new"})]) == []  # a column
        assert store.write([Record("c", "g", {"x": 2.5})]) == []  # a widening
        again = [Record("a", "g", {"x": 3}), Record("b", "g", {"x": 2, "y": "new"})]
        assert store.write(again) == []  # staged: "a" succeeds over its failure
        assert store.added == 0
    finally:
        engine.dispose()
    assert [(r["_id"], r["x"], r["y"], r["_error"]) for r in typed_rows(mysql_url, "g")] == [
        ("a", 3.0, None, None), ("b", 2.0, "new", None), ("c", 2.5, None, None)
    ]  # fmt: skip
