"""The fast insert path: rows as tuples, SQL built once per table and column set.

SQLite gets one ``INSERT ... ON CONFLICT(_id) ...`` run with executemany through
``exec_driver_sql``; PostgreSQL (psycopg 3) gets COPY, falling back to COPY into a temporary
table and ``INSERT ... SELECT ... ON CONFLICT (_id) ...`` when an id is already stored. On a
conflict the stored row stays, unless it is a failure (``_error`` set) and the new one is not.
Both run inside the caller's SQLAlchemy transaction, apply the bind processors SQLAlchemy would
(datetimes, JSON, booleans) and raise SQLAlchemy's exception classes, so the store's bisection
of refused rows works unchanged. Tables with Python-side column defaults use the generic insert.
"""

from __future__ import annotations

import abc
import datetime as dt
import functools
import math
from collections.abc import Callable
from itertools import repeat
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from collector.schema import TableInfo
from workers.record import Record

_UTC = dt.UTC
_ATTRIBUTE = {
    "_id": "id", "_ts": "ts", "_host": "host", "_pid": "pid", "_job": "job",
    "_elapsed": "elapsed", "_maxrss": "maxrss",
}  # fmt: skip
_STAGE = "rc_stage"  # a temporary table, dropped after use
_UNIQUE_VIOLATION = "23505"
Convert = Callable[[Any], Any]


def suits(info: TableInfo) -> bool:
    """Whether ``info``'s table can take the fast path: an ``_id`` key, no Python-side defaults
    (those only SQLAlchemy's own insert fills in)."""
    return info.has_id and all(c.default is None for c in info.table.columns)


def utc_naive(value: Any) -> Any:
    """An aware datetime as naive UTC (how datetimes are stored); anything else unchanged."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(_UTC).replace(tzinfo=None)
    return value


def ts_datetime(value: float) -> dt.datetime:
    """A record's ``ts`` (seconds since the epoch) as the naive UTC datetime stored in ``_ts``:
    exactly ``datetime.fromtimestamp`` (microseconds rounded half to even), whole seconds cached."""
    whole, micro = _split(value)
    return _second(whole).replace(microsecond=micro)


def _split(value: float) -> tuple[float, int]:
    frac, whole = math.modf(value)
    micro = round(frac * 1e6)
    if micro >= 1_000_000:
        return whole + 1, micro - 1_000_000
    if micro < 0:
        return whole - 1, micro + 1_000_000
    return whole, micro


@functools.lru_cache(maxsize=4096)
def _second(whole: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(whole, _UTC).replace(tzinfo=None)


@functools.lru_cache(maxsize=4096)
def _second_text(whole: float) -> str:
    return _second(whole).isoformat(sep=" ")


def _ts_text(value: float) -> str:
    """``_ts`` as ISO text (SQLite's DATETIME storage, and what COPY parses into a timestamp),
    without building a datetime per row."""
    frac, whole = math.modf(value)
    micro = round(frac * 1e6)
    if not 0 <= micro < 1_000_000:  # rounded up to the next second, or before 1970
        whole, micro = _split(value)
    return f"{_second_text(whole)}.{micro:06d}"


def _ts_converter(proc: Convert | None, text: bool) -> Convert:
    """How ``_ts`` is bound: as text for COPY (``text``), or when the text is what ``proc``
    makes of the datetime (SQLite); else as a datetime through ``proc``."""
    if text:
        return _ts_text
    if proc is None:
        return ts_datetime
    samples = (1_700_000_000.0, 1_700_000_000.1234565, 1_700_000_001.9999996)
    if all(proc(ts_datetime(t)) == _ts_text(t) for t in samples):
        return _ts_text
    return _compose(ts_datetime, proc)


class Layout:
    """The columns one batch fills in one table, and how each value is bound."""

    def __init__(
        self, dialect: sa.Dialect, info: TableInfo, data_keys: frozenset[str], text_ts: bool
    ) -> None:
        table = info.table
        self.meta = [name for name in _ATTRIBUTE if name in info.kinds]
        self.data = [c.name for c in table.columns if c.name in data_keys]
        self.columns = self.meta + self.data
        self._getters = [attrgetter(_ATTRIBUTE[name]) for name in self.meta]
        self.convert: list[tuple[int, Convert]] = []
        for index, name in enumerate(self.columns):
            column = table.columns[name]
            proc = column.type.dialect_impl(dialect).bind_processor(dialect)
            if name == "_ts":
                self.convert.append((index, _ts_converter(proc, text_ts)))
            elif info.kinds[name] == "datetime":
                self.convert.append((index, _compose(utc_naive, proc)))
            elif proc is not None:
                self.convert.append((index, proc))

    def rows(self, records: list[Record]) -> list[tuple[Any, ...]]:
        """One tuple per record, in ``columns`` order, bind processors applied (built column
        by column: ``map`` and ``zip`` loop in C, not per row in Python)."""
        datas = [r.data for r in records]
        count = len(records)
        columns: list[Any] = [list(map(getter, records)) for getter in self._getters]
        columns += [list(map(dict.get, datas, repeat(key, count))) for key in self.data]
        for index, convert in self.convert:
            columns[index] = list(map(convert, columns[index]))
        return list(zip(*columns, strict=True))


def on_conflict(
    prep: sa.sql.compiler.IdentifierPreparer, info: TableInfo, columns: list[str]
) -> str:
    """The ON CONFLICT clause for inserting ``columns`` into ``info``'s table: keep the stored
    row, except that a success replaces a failure (a rerun of a failed job under its key)."""
    if "_error" not in info.kinds:
        return 'ON CONFLICT ("_id") DO NOTHING'
    stored = f"{prep.quote(info.table.name)}.{prep.quote('_error')}"
    updates = [f"{prep.quote(c)} = excluded.{prep.quote(c)}" for c in columns if c != "_id"]
    new_ok = "TRUE"
    if "_error" in columns:
        new_ok = f"excluded.{prep.quote('_error')} IS NULL"
    else:
        updates.append(f"{prep.quote('_error')} = NULL")
    return (
        f'ON CONFLICT ("_id") DO UPDATE SET {", ".join(updates)} '
        f"WHERE {stored} IS NOT NULL AND {new_ok}"
    )


def _compose(first: Convert, then: Convert | None) -> Convert:
    if then is None:
        return first
    return lambda value: then(first(value))


class BulkWriter(abc.ABC):
    """Inserts records into tables that ``suits`` accepts; one subclass per dialect."""

    text_ts = False  # whether ``_ts`` may travel as text

    def __init__(self, dialect: sa.Dialect) -> None:
        self.dialect = dialect
        self._layouts: dict[tuple[sa.Table, frozenset[str]], Layout] = {}

    def layout(self, info: TableInfo, records: list[Record]) -> Layout:
        """The (cached) layout for the data keys these records carry."""
        keys: set[str] = set()
        for rec in records:
            keys.update(rec.data)
        key = (info.table, frozenset(keys))  # a schema change brings a new Table object
        found = self._layouts.get(key)
        if found is None:
            if len(self._layouts) > 256:  # old Tables after many schema changes: forget them
                self._layouts.clear()
            found = self._layouts[key] = Layout(self.dialect, info, key[1], self.text_ts)
        return found

    def quoted(self, info: TableInfo, layout: Layout) -> tuple[str, str, str]:
        """The table, its column list and the ON CONFLICT clause, quoted for SQL."""
        prep = self.dialect.identifier_preparer
        columns = ", ".join(prep.quote(c) for c in layout.columns)
        return prep.format_table(info.table), columns, on_conflict(prep, info, layout.columns)

    @abc.abstractmethod
    def insert(self, conn: sa.Connection, info: TableInfo, records: list[Record]) -> None:
        """Insert ``records`` (distinct ids) into ``info``'s table, skipping ids already there."""


class SQLiteWriter(BulkWriter):
    """executemany of one precompiled statement with positional parameters."""

    def insert(self, conn: sa.Connection, info: TableInfo, records: list[Record]) -> None:
        layout = self.layout(info, records)
        table, columns, conflict = self.quoted(info, layout)
        marks = ", ".join("?" * len(layout.columns))
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) {conflict}"  # noqa: S608
        conn.exec_driver_sql(sql, layout.rows(records))  # type: ignore[arg-type]


class PostgresCopyWriter(BulkWriter):
    """COPY straight into the table under a savepoint; if an ``_id`` is already there (a
    redelivered batch, a rerun), roll back to the savepoint and COPY into a temporary table,
    then ``INSERT ... SELECT ... ON CONFLICT (_id) ...``."""

    text_ts = True  # COPY's text format parses ISO timestamps exactly

    def insert(self, conn: sa.Connection, info: TableInfo, records: list[Record]) -> None:
        layout = self.layout(info, records)
        table, columns, conflict = self.quoted(info, layout)
        rows = layout.rows(records)
        raw = conn.connection.dbapi_connection
        dbapi = self.dialect.loaded_dbapi
        statement = "SAVEPOINT rc_copy"
        try:
            with raw.cursor() as cur:  # type: ignore[union-attr]
                cur.execute(statement)
                try:
                    statement = f"COPY {table} ({columns}) FROM STDIN"
                    _copy(cur, statement, rows)
                    statement = "RELEASE SAVEPOINT rc_copy"
                    cur.execute(statement)
                    return
                except dbapi.IntegrityError as exc:
                    if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
                        raise
                    cur.execute("ROLLBACK TO SAVEPOINT rc_copy")
                for statement in (
                    f"CREATE TEMPORARY TABLE {_STAGE} ON COMMIT DROP AS "  # noqa: S608
                    f"SELECT {columns} FROM {table} WITH NO DATA",
                    f"COPY {_STAGE} ({columns}) FROM STDIN",
                    f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_STAGE} "  # noqa: S608
                    + conflict,
                    f"DROP TABLE {_STAGE}",
                ):
                    if statement.startswith("COPY"):
                        _copy(cur, statement, rows)
                    else:
                        cur.execute(statement)
        except dbapi.Error as exc:  # the same exception classes SQLAlchemy's own calls raise
            raise sa_exc.DBAPIError.instance(
                statement, None, exc, dbapi.Error, dialect=self.dialect
            ) from exc


def _copy(cur: Any, statement: str, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def writer_for(dialect: sa.Dialect) -> BulkWriter | None:
    """The fast writer for this dialect and driver, or None (the generic insert is used)."""
    if dialect.name == "sqlite":
        return SQLiteWriter(dialect)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return PostgresCopyWriter(dialect)
    return None
