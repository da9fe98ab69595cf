"""Writing a batch: one transaction, ON CONFLICT(_id), bad rows isolated by bisection."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from collector import bulk
from collector.errors import DatabaseUnavailable, first_line
from collector.schema import INT64, Plan, Schema, TableInfo
from workers.record import Record

log = logging.getLogger(__name__)
_UTC = dt.UTC
Item = tuple[Record, TableInfo]
Shape = tuple[str, tuple[str, ...], tuple[type, ...]]  # a record's table, keys and value types


def is_unavailable(exc: BaseException) -> bool:
    """True for errors about the database itself (down, locked, connection lost), not a row."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError)


def is_row_error(exc: sa_exc.StatementError) -> bool:
    """True for errors some row caused (constraint, bad value): worth bisecting to find it."""
    if isinstance(exc, sa_exc.DBAPIError):
        return isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError)
    return True  # a value the driver or a type processor could not bind


def build_row(rec: Record, info: TableInfo) -> dict[str, Any]:
    """The row for ``rec`` in ``info``'s table: metadata columns the table has, then the data."""
    meta = {
        "_id": rec.id,
        "_ts": bulk.ts_datetime(rec.ts),
        "_host": rec.host,
        "_pid": rec.pid,
        "_job": rec.job,
        "_elapsed": rec.elapsed,
        "_maxrss": rec.maxrss,
    }
    row = {k: v for k, v in meta.items() if k in info.kinds}
    for key, value in rec.data.items():
        if key in info.kinds:
            row[key] = bulk.utc_naive(value) if info.kinds[key] == "datetime" else value
    return row


class Store:
    """Commits batches of records into their tables through one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine, schema: Schema) -> None:
        self.engine = engine
        self.schema = schema
        self._stale = True
        self._insert = _insert_for(engine.dialect.name)
        self._bulk = bulk.writer_for(engine.dialect)
        self._fits: dict[Shape, tuple[TableInfo, tuple[int, ...]]] = {}  # and where its ints are

    def write(self, records: list[Record]) -> list[tuple[Record, str]]:
        """Store ``records``; returns those refused, with reasons. Raises DatabaseUnavailable."""
        try:
            if self._stale:
                with self.engine.connect() as conn:
                    self.schema.load(conn)
                self._stale = False
            plan = self._plan(records)
            if plan.needs_ddl:
                plan = self._apply_ddl(records, plan)
            items = [
                (rec, info)
                for table, recs in plan.accepted.items()
                for info in [self.schema.tables[table]]
                for rec in _first_per_id(recs)
            ]
            return plan.rejected + self._isolate(items)
        except sa_exc.SQLAlchemyError as exc:
            self._stale = True
            if is_unavailable(exc) or isinstance(exc, sa_exc.ProgrammingError):
                raise DatabaseUnavailable(first_line(exc)) from exc
            raise

    def _plan(self, records: list[Record]) -> Plan:
        """``Schema.plan``, skipped when every record has the table, keys and value types of one
        it already accepted as it was, against the same table (only int ranges are rechecked)."""
        tables, fits = self.schema.tables, self._fits
        low, high = INT64
        accepted: dict[str, list[Record]] = defaultdict(list)
        for rec in records:
            values = tuple(rec.data.values())
            known = fits.get((rec.table, tuple(rec.data), tuple(map(type, values))))
            if known is None or known[0] is not tables.get(rec.table):
                break
            ints = known[1]
            if ints and not all(low <= values[i] <= high for i in ints):
                break
            accepted[rec.table].append(rec)
        else:
            return Plan(accepted=accepted)
        plan = self.schema.plan(records)
        if not plan.needs_ddl:  # no staged changes: each verdict stands on its own
            if len(fits) > 4096:
                fits.clear()
            for table, recs in plan.accepted.items():
                for rec in recs:
                    types = tuple(map(type, rec.data.values()))
                    ints = tuple(i for i, t in enumerate(types) if t is int)
                    fits[(table, tuple(rec.data), types)] = (tables[table], ints)
        return plan

    def _apply_ddl(self, records: list[Record], plan: Any) -> Any:
        """Run the plan's DDL; if a peer changed the schema first, reload and plan again once."""
        try:
            with self.engine.begin() as conn:
                self.schema.apply(conn, plan)
            return plan
        except (sa_exc.ProgrammingError, sa_exc.IntegrityError) as exc:
            log.info("schema changed under us (%s); reloading", first_line(exc))
            with self.engine.connect() as conn:
                self.schema.load(conn)
            plan = self.schema.plan(records)
            with self.engine.begin() as conn:
                self.schema.apply(conn, plan)
            return plan

    def _isolate(self, items: list[Item]) -> list[tuple[Record, str]]:
        """Commit ``items`` in one transaction; if rows are refused, bisect to find just those."""
        if not items:
            return []
        try:
            self._commit(items)
            return []
        except sa_exc.StatementError as exc:
            if not is_row_error(exc):
                raise
            if len(items) == 1:
                why = "database refused" if isinstance(exc, sa_exc.DBAPIError) else "cannot store"
                return [(items[0][0], f"{why} the row: {first_line(exc)}")]
            mid = len(items) // 2
            return self._isolate(items[:mid]) + self._isolate(items[mid:])

    def _commit(self, items: list[Item]) -> None:
        """Insert ``items`` in one transaction. A value no driver or JSON encoder takes (say a
        map with bytes keys in a JSON column) fails as a row error, so bisection finds it."""
        by_table: dict[str, tuple[TableInfo, list[Record]]] = {}
        for rec, info in items:
            by_table.setdefault(info.table.name, (info, []))[1].append(rec)
        with self.engine.begin() as conn:
            for info, recs in by_table.values():
                try:
                    self._insert_records(conn, info, recs)
                except (TypeError, ValueError, OverflowError) as exc:
                    raise sa_exc.StatementError(str(exc), None, None, exc) from exc

    def _insert_records(self, conn: sa.Connection, info: TableInfo, recs: list[Record]) -> None:
        if self._bulk is not None and bulk.suits(info):
            self._bulk.insert(conn, info, recs)
            return
        rows = [build_row(rec, info) for rec in recs]
        columns = sorted({key for row in rows for key in row})
        full = [{c: row.get(c) for c in columns} for row in rows]
        self._insert(conn, info, full)


def _first_per_id(records: list[Record]) -> list[Record]:
    """One record per id within a batch, as the database keeps one row per id across batches:
    the first, unless it is a failure (``_error``) and a later one is not."""
    seen: dict[str, Record] = {}
    for rec in records:
        kept = seen.setdefault(rec.id, rec)
        if kept is not rec and "_error" in kept.data and "_error" not in rec.data:
            seen[rec.id] = rec
    return list(seen.values())


def _insert_for(dialect: str) -> Callable[[sa.Connection, TableInfo, list[dict[str, Any]]], None]:
    """The dialect's idempotent insert: ON CONFLICT, else look up the ids already present. A
    stored row stays, unless it is a failure (``_error``) and the new row is not."""
    dialect_insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)

    def insert(conn: sa.Connection, info: TableInfo, rows: list[dict[str, Any]]) -> None:
        table = info.table
        if not info.has_id:
            conn.execute(table.insert(), rows)
        elif dialect_insert is not None:
            stmt: Any = dialect_insert(table)
            if "_error" in info.kinds:
                columns = [c for c in rows[0] if c != "_id"]
                updates = {c: stmt.excluded[c] for c in columns}
                updates.setdefault("_error", None)
                new_ok = stmt.excluded._error.is_(None) if "_error" in rows[0] else sa.true()
                stmt = stmt.on_conflict_do_update(
                    index_elements=["_id"], set_=updates,
                    where=sa.and_(table.c._error.is_not(None), new_ok),
                )  # fmt: skip
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=["_id"])
            conn.execute(stmt, rows)
        else:
            ids = [row["_id"] for row in rows]
            query = sa.select(table.c._id, *_error_of(table)).where(table.c._id.in_(ids))
            stored: dict[str, Any] = dict(conn.execute(query).all())  # id -> its _error
            replace = [r["_id"] for r in rows if stored.get(r["_id"]) and not r.get("_error")]
            if replace:  # a success replaces a stored failure
                conn.execute(table.delete().where(table.c._id.in_(replace)))
            fresh = [r for r in rows if r["_id"] not in stored or r["_id"] in replace]
            if fresh:
                conn.execute(table.insert(), fresh)

    return insert


def _error_of(table: sa.Table) -> list[sa.ColumnElement[Any]]:
    """The ``_error`` column as a query column, or a NULL literal for tables without one."""
    return [table.c._error if "_error" in table.c else sa.null()]

