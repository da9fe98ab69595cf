"""Inserting one table's records: rows built column by column, SQL built once per table and
column set, the conflict rule from collector.store.conflict on every path.

SQLite runs the compiled upsert with executemany; PostgreSQL (psycopg 3) COPYs straight into
the table under a savepoint, and when an ``_id`` is already stored COPYs into a temporary table
and upserts from it. Tables with Python-side column defaults (only SQLAlchemy's own insert
fills those) and other dialects take the generic insert. Every writer runs inside the caller's
transaction and raises SQLAlchemy's exception classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.processors import to_float

from collector.store import conflict
from collector.store.columns import FROM_RECORD
from collector.store.schema import TableInfo
from collector.store.timestamps import Convert, compose, ts_converter, ts_datetime, utc_naive
from workers.record import Record

_FLOATS = {float, type(None)}
_DATA = attrgetter("data")
_DATA_FIELD = Record._fields.index("data")
STAGE = "_rc_stage"  # a temporary table, dropped at commit; no record's name starts with "_"
_UNIQUE_VIOLATION = "23505"


class Layout:
    """The columns one batch fills in one table, and how each value is bound: through the
    type's bind processor (``bound``, for driver-level calls), or as Python values."""

    def __init__(
        self,
        dialect: sa.Dialect,
        info: TableInfo,
        keys: frozenset[str],
        *,
        bound: bool,
        text_ts: bool,
    ) -> None:
        table = info.table
        wanted = {*FROM_RECORD, *keys}
        self.columns = [c.name for c in table.columns if c.name in wanted and c.name in info.kinds]
        self.meta = [name for name in self.columns if name in FROM_RECORD]
        self.data = [name for name in self.columns if name not in FROM_RECORD]
        self._fields = [Record._fields.index(FROM_RECORD[name]) for name in self.meta]
        self.convert: list[tuple[int, Convert]] = []
        self.ts_index = self.columns.index("_ts") if "_ts" in self.columns else -1
        for index, name in enumerate(self.columns):
            proc = None
            if bound:
                proc = table.columns[name].type.dialect_impl(dialect).bind_processor(dialect)
            if name == "_ts":
                self.convert.append((index, ts_converter(proc, text_ts) if bound else ts_datetime))
            elif info.kinds[name] == "datetime":
                self.convert.append((index, compose(utc_naive, proc)))
            elif proc is not None:
                self.convert.append((index, proc))

    def rows(self, records: list[Record]) -> list[tuple[Any, ...]]:
        """One tuple per record, in ``columns`` (table) order, built column by column: ``map``
        and ``zip`` loop in C, not per row in Python."""
        if not records:
            return []
        fields = list(zip(*records, strict=True))  # records are tuples: a column per field
        datas, count = fields[_DATA_FIELD], len(records)
        by_name: dict[str, Sequence[Any]] = {
            name: fields[index] for name, index in zip(self.meta, self._fields, strict=True)
        }
        for key in self.data:
            by_name[key] = list(map(dict.get, datas, repeat(key, count)))
        columns = [by_name[name] for name in self.columns]
        for index, convert in self.convert:
            column = columns[index]
            if convert is to_float and set(map(type, column)) <= _FLOATS:
                continue  # floats already: the processor would return each value as it is
            if index == self.ts_index:  # records emitted together share their emit time
                distinct = set(column)
                if len(distinct) * 4 <= len(column):
                    converted = {value: convert(value) for value in distinct}
                    columns[index] = list(map(converted.__getitem__, column))
                    continue
            columns[index] = list(map(convert, column))
        return list(zip(*columns, strict=True))


class Writer:
    """The generic insert: SQLAlchemy's own statement, Python values, executemany."""

    bound = False  # whether rows carry driver-level (bind-processed) values
    text_ts = False  # whether ``_ts`` may travel as text

    def __init__(self, dialect: sa.Dialect) -> None:
        self.dialect = dialect
        self._layouts: dict[tuple[sa.Table, frozenset[str]], tuple[Layout, Any]] = {}

    def prepared(self, info: TableInfo, records: list[Record]) -> tuple[Layout, Any]:
        """The (cached) layout and statement for the data keys these records carry."""
        keys = frozenset().union(*set(map(tuple, map(_DATA, records))))
        key = (info.table, keys)  # a schema change brings a new Table object
        found = self._layouts.get(key)
        if found is None:
            if len(self._layouts) > 256:  # old Tables after many schema changes: forget them
                self._layouts.clear()
            layout = Layout(self.dialect, info, key[1], bound=self.bound, text_ts=self.text_ts)
            found = self._layouts[key] = (layout, self.statement(info, layout))
        return found

    def statement(self, info: TableInfo, layout: Layout) -> Any:
        """The upsert, RETURNING the ids it wrote (executemany's rowcount is -1 on psycopg)."""
        if not conflict.has_upsert(self.dialect):
            return None
        stmt = conflict.upsert(self.dialect, info.table, layout.columns)
        return stmt.returning(info.table.c["_id"]) if "_id" in info.table.c else stmt

    def insert(self, conn: sa.Connection, info: TableInfo, records: list[Record]) -> int:
        """Insert ``records`` (distinct ids) into ``info``'s table under the conflict rule;
        returns the rows inserted or replaced."""
        layout, stmt = self.prepared(info, records)
        rows = [dict(zip(layout.columns, row, strict=True)) for row in layout.rows(records)]
        if stmt is None:
            return conflict.portable_insert(conn, info.table, rows)
        result = conn.execute(stmt, rows)
        return len(result.all()) if result.returns_rows else len(rows)


class SQLiteWriter(Writer):
    """executemany of the compiled upsert, with positional parameters."""

    bound = True

    def statement(self, info: TableInfo, layout: Layout) -> Any:
        stmt = conflict.upsert(self.dialect, info.table, layout.columns)
        compiled = stmt.values({c: sa.bindparam(c) for c in layout.columns}).compile(
            dialect=self.dialect
        )
        assert list(compiled.positiontup or ()) == layout.columns
        return str(compiled)

    def insert(self, conn: sa.Connection, info: TableInfo, records: list[Record]) -> int:
        layout, sql = self.prepared(info, records)
        return int(conn.exec_driver_sql(sql, layout.rows(records)).rowcount)  # type: ignore[arg-type]


class PostgresCopyWriter(Writer):
    """COPY straight into the table under a savepoint; if an ``_id`` is already there (a
    redelivered batch, a rerun), roll back to the savepoint, COPY into a temporary table and
    upsert from it."""

    bound = True
    text_ts = True  # COPY's text format parses ISO timestamps exactly

    def statement(self, info: TableInfo, layout: Layout) -> Any:
        prep = self.dialect.identifier_preparer
        columns = ", ".join(prep.quote(c) for c in layout.columns)
        stage = sa.table(STAGE, *(sa.column(c) for c in layout.columns))
        select = sa.select(*(stage.c[c] for c in layout.columns))
        stmt = sa.dialects.postgresql.insert(info.table).from_select(layout.columns, select)
        upsert = conflict.with_rule(stmt, info.table, layout.columns)
        table = prep.format_table(info.table)
        return (
            f"COPY {table} ({columns}) FROM STDIN",
            f"CREATE TEMPORARY TABLE {prep.quote(STAGE)} ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {columns} FROM {table} WITH NO DATA",
            f"COPY {prep.quote(STAGE)} ({columns}) FROM STDIN",
            str(upsert.compile(dialect=self.dialect)),
            f"DROP TABLE {prep.quote(STAGE)}",
        )

    def insert(self, conn: sa.Connection, info: TableInfo, records: list[Record]) -> int:
        layout, (copy, *staged) = self.prepared(info, records)
        rows = layout.rows(records)
        raw = conn.connection.dbapi_connection
        dbapi = self.dialect.loaded_dbapi
        statement = "SAVEPOINT rc_copy"
        try:
            with raw.cursor() as cur:  # type: ignore[union-attr]
                cur.execute(statement)
                try:
                    statement = copy
                    _copy(cur, statement, rows)
                    statement = "RELEASE SAVEPOINT rc_copy"
                    cur.execute(statement)
                    return len(rows)
                except dbapi.IntegrityError as exc:
                    if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
                        raise
                    cur.execute("ROLLBACK TO SAVEPOINT rc_copy")
                inserted = 0
                for statement in staged:
                    if statement.startswith("COPY"):
                        _copy(cur, statement, rows)
                    elif statement.startswith("INSERT"):
                        inserted = cur.execute(statement).rowcount
                    else:
                        cur.execute(statement)
                return inserted
        except dbapi.Error as exc:  # the same exception classes SQLAlchemy's own calls raise
            raise sa_exc.DBAPIError.instance(
                statement, None, exc, dbapi.Error, dialect=self.dialect
            ) from exc


def _copy(cur: Any, statement: str, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def suits_fast(info: TableInfo) -> bool:
    """Whether ``info``'s table can take a fast writer: an ``_id`` key, no Python-side defaults."""
    return info.has_id and all(c.default is None for c in info.table.columns)


def writers_for(dialect: sa.Dialect) -> tuple[Writer, Writer]:
    """The fast writer for this dialect and driver (or the generic one), and the generic one."""
    generic = Writer(dialect)
    if dialect.name == "sqlite":
        return SQLiteWriter(dialect), generic
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return PostgresCopyWriter(dialect), generic
    return generic, generic
