"""The one conflict rule, rendered for every insert path: under one ``_id`` the first row
stays, except that a success replaces a stored failure (``_error`` set) whole, so a rerun of a
failed job under its key fixes its row.

``upsert`` builds the statement with SQLAlchemy's ON CONFLICT constructs; the generic insert
executes it, the fast SQLite writer runs its compiled text with executemany, and the COPY
writer renders it over a staging table. Dialects without ON CONFLICT get the same rule in
Python (``portable_insert``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def has_upsert(dialect: sa.Dialect) -> bool:
    """Whether the dialect renders ON CONFLICT."""
    return dialect.name in _INSERT


def upsert(dialect: sa.Dialect, table: sa.Table, columns: Sequence[str]) -> Any:
    """INSERT into ``table`` applying the conflict rule to the ``columns`` a batch fills."""
    stmt = _INSERT[dialect.name](table)
    return with_rule(stmt, table, columns)


def with_rule(stmt: Any, table: sa.Table, columns: Sequence[str]) -> Any:
    """``stmt`` (a dialect insert into ``table``) with the conflict rule added."""
    if "_id" not in table.c:
        return stmt  # nothing to conflict on (a model table without _id)
    if "_error" not in table.c:
        return stmt.on_conflict_do_nothing(index_elements=["_id"])
    updates = {  # the success replaces the whole row: columns it lacks become NULL
        c.name: stmt.excluded[c.name] if c.name in columns else sa.null()
        for c in table.columns
        if c.name != "_id"
    }
    new_ok = stmt.excluded["_error"].is_(None) if "_error" in columns else sa.true()
    return stmt.on_conflict_do_update(
        index_elements=["_id"],
        set_=updates,
        where=sa.and_(table.c["_error"].is_not(None), new_ok),
    )


def portable_insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> int:
    """The conflict rule without ON CONFLICT: look up the stored ids and their ``_error``;
    returns the rows inserted or replaced."""
    if "_id" not in table.c:
        conn.execute(table.insert(), rows)
        return len(rows)
    error = table.c["_error"] if "_error" in table.c else sa.null()
    ids = [row["_id"] for row in rows]
    query = sa.select(table.c["_id"], error).where(table.c["_id"].in_(ids))
    stored: dict[str, Any] = dict(conn.execute(query).all())  # id -> its _error
    replace = [r["_id"] for r in rows if stored.get(r["_id"]) and not r.get("_error")]
    if replace:
        conn.execute(table.delete().where(table.c["_id"].in_(replace)))
    fresh = [r for r in rows if r["_id"] not in stored or r["_id"] in replace]
    if fresh:
        conn.execute(table.insert(), fresh)
    return len(fresh)
