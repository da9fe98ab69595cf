"""Inserting one table's records: rows built column by column, SQL built once per table and
column set, the conflict rule from collector.store.conflict on every path.

Each dialect brings its fast writer (collector.dialects: executemany on SQLite, COPY on
PostgreSQL); tables with Python-side column defaults (only SQLAlchemy's own insert fills those)
take the generic insert here. Every writer runs inside the caller's transaction, raises
SQLAlchemy's exception classes, and returns how many rows the table did not have before.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine.processors import to_float

from collector import dialects
from collector.store import conflict
from collector.store.columns import FROM_RECORD
from collector.store.schema import TableInfo
from collector.store.timestamps import Convert, compose, ts_converter, ts_datetime, utc_naive
from workers.record import Record

if TYPE_CHECKING:
    from collector.dialects.base import Dialect

_FLOATS = {float, type(None)}
_DATA = attrgetter("data")
_DATA_FIELD = Record._fields.index("data")
ID_CHUNK = 500  # ids per lookup of the stored ones


class MissingColumn(LookupError):
    """A value whose key has no column: a planning bug, never a value silently dropped. Not
    classified, so the batch is retried and then its record dead-lettered with this reason."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no column {key!r} for a value (the schema changed under the batch)")


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
        self.absent = sorted(keys - set(self.columns))  # keys without a column: None only
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
            elif info.kinds[name] == "json":
                self.convert.append((index, json_null(proc) if bound else _sql_null))
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
        for key in self.absent:
            if any(data.get(key) is not None for data in datas):
                raise MissingColumn(key)
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


def json_null(proc: Convert | None) -> Convert:
    """A JSON column's bind processor that leaves None as None (SQL NULL): SQLAlchemy's binds
    it as the JSON text 'null', which ``IS NULL`` misses."""
    if proc is None:
        return lambda value: value
    return lambda value: None if value is None else proc(value)


def _sql_null(value: Any) -> Any:
    """None as SQL NULL for SQLAlchemy's own insert of a JSON column (see ``json_null``)."""
    return sa.null() if value is None else value


class Writer:
    """The generic insert: SQLAlchemy's own statement, Python values, executemany."""

    bound = False  # whether rows carry driver-level (bind-processed) values
    text_ts = False  # whether ``_ts`` may travel as text

    def __init__(self, dialect: sa.Dialect) -> None:
        self.rules: Dialect = dialects.get(dialect.name)
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
        return conflict.upsert(self.rules, info.table, layout.columns)

    def insert(self, conn: sa.Connection, info: TableInfo, records: list[Record]) -> int:
        """Insert ``records`` (distinct ids) into ``info``'s table under the conflict rule;
        returns how many of them the table did not hold."""
        layout, stmt = self.prepared(info, records)
        rows = [dict(zip(layout.columns, row, strict=True)) for row in layout.rows(records)]
        stored = 0
        if info.has_id:
            stored = count_stored(conn, info.table, [record.id for record in records])
        conn.execute(stmt, rows)
        return len(rows) - stored


def suits_fast(info: TableInfo) -> bool:
    """Whether ``info``'s table can take a fast writer: an ``_id`` key, no Python-side defaults."""
    return info.has_id and all(c.default is None for c in info.table.columns)


def writers_for(dialect: sa.Dialect) -> tuple[Writer, Writer]:
    """The fast writer of this database's dialect (or the generic one), and the generic one."""
    rules = dialects.get(dialect.name)
    generic = rules.generic_writer(dialect) or Writer(dialect)
    return rules.fast_writer(dialect) or generic, generic


def count_stored(conn: sa.Connection, table: sa.Table, ids: list[str]) -> int:
    """How many of ``ids`` (distinct) ``table`` holds already."""
    found = 0
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        query = sa.select(sa.func.count()).where(table.c["_id"].in_(chunk))
        found += int(conn.scalar(query) or 0)
    return found
