"""The one conflict rule, rendered for every insert path: under one ``_id`` the row emitted
first stays (the earliest ``_ts``, whatever order records arrive in), except that a success
replaces a stored failure (``_error`` set) whole, so a rerun of a failed job under its key fixes
its row. A failure never replaces a success; between two of a kind, the earlier emitted wins,
and on a tie the stored row stays.

``upsert`` builds the statement with the dialect's ON CONFLICT construct; the generic insert
executes it, and each dialect's fast writer runs its compiled text (or renders it over a
staging table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from collector.dialects.base import Dialect


def upsert(dialect: Dialect, table: sa.Table, columns: Sequence[str]) -> Any:
    """INSERT into ``table`` applying the conflict rule to the ``columns`` a batch fills."""
    return with_rule(dialect.insert(table), table, columns)


def with_rule(stmt: Any, table: sa.Table, columns: Sequence[str]) -> Any:
    """``stmt`` (a dialect insert into ``table``) with the conflict rule added."""
    if "_id" not in table.c:
        return stmt  # nothing to conflict on (a model table without _id)
    replace = replaces(table, stmt.excluded, columns)
    if replace is None:
        return stmt.on_conflict_do_nothing(index_elements=["_id"])
    updates = {  # the new row replaces the whole row: columns it lacks become NULL
        c.name: stmt.excluded[c.name] if c.name in columns else sa.null()
        for c in table.columns
        if c.name != "_id"
    }
    return stmt.on_conflict_do_update(index_elements=["_id"], set_=updates, where=replace)


def replaces(table: sa.Table, new: Any, columns: Sequence[str]) -> Any:
    """When the ``new`` row (columns ``columns``) replaces the stored row of ``table``, as a
    SQL condition; None when it never does (a table without ``_error`` and ``_ts``)."""
    stored = table.c
    failed = "_error" in stored
    new_failed = new["_error"].is_not(None) if "_error" in columns else sa.false()
    earlier = new["_ts"] < stored["_ts"] if "_ts" in stored and "_ts" in columns else None
    if not failed:
        return earlier
    success_over_failure = sa.and_(stored["_error"].is_not(None), sa.not_(new_failed))
    if earlier is None:
        return success_over_failure
    same_standing = sa.or_(
        sa.and_(stored["_error"].is_(None), sa.not_(new_failed)),
        sa.and_(stored["_error"].is_not(None), new_failed),
    )
    return sa.or_(success_over_failure, sa.and_(same_standing, earlier))
