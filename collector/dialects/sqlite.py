"""SQLite: WAL and a busy timeout, transactional DDL (SQLAlchemy begins every transaction
itself), widening by rebuilding the table, error codes, and executemany of the compiled upsert
as the fast writer."""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite

from collector.dialects import exact_numbers
from collector.dialects.base import Dialect
from collector.netfs import journal_mode
from collector.store import conflict
from collector.store.ddl import WIDEN_PREFIX
from collector.store.fault import Fault
from collector.store.schema import TableInfo
from collector.store.writers import Layout, Writer, count_stored
from workers.record import Record

# Primary result codes (the low byte of ``sqlite_errorcode``).
CODES = {
    5: Fault.TRANSIENT,  # BUSY: another connection writes
    6: Fault.TRANSIENT,  # LOCKED
    7: Fault.TRANSIENT,  # NOMEM
    8: Fault.TRANSIENT,  # READONLY: the file or its directory is not writable (yet)
    9: Fault.TRANSIENT,  # INTERRUPT
    10: Fault.TRANSIENT,  # IOERR
    13: Fault.TRANSIENT,  # FULL: disk full, or max_page_count reached
    14: Fault.TRANSIENT,  # CANTOPEN
    15: Fault.TRANSIENT,  # PROTOCOL
    1: Fault.RECORDS,  # ERROR: the SQL a record's names or shape made was refused
    18: Fault.RECORDS,  # TOOBIG
    19: Fault.RECORDS,  # CONSTRAINT
    20: Fault.RECORDS,  # MISMATCH
    25: Fault.RECORDS,  # RANGE
}


class SQLite(Dialect):
    name = "sqlite"
    title = "SQLite"
    driver = "pysqlite"
    module = "sqlite3"
    refuses_floats = True  # -0.0: a REAL holding a whole number is stored as an integer

    def float_problem(self, value: float) -> str | None:
        """-0.0 only (SQLite stores it as 0.0); NaN is stored as NULL, the infinities kept."""
        if value == 0 and math.copysign(1.0, value) < 0:
            return "-0.0: SQLite stores negative zero as 0.0 (send 0.0)"
        return None

    def configure(self, engine: sa.Engine, url: sa.URL) -> None:
        """WAL (DELETE on a network file system: collector.netfs), synchronous=NORMAL and a
        busy timeout; transactions SQLAlchemy begins itself,
        so a schema change commits or rolls back with its batch (the driver would run DDL
        outside)."""
        in_memory = url.database in (None, "", ":memory:")
        journal = None if in_memory else journal_mode(url.database)  # never WAL on a network fs

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # no implicit BEGIN: ours, below, covers DDL too
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=5000")
            if journal is not None:
                cur.execute(f"PRAGMA journal_mode={journal}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN")

    def table_problem(self, name: str) -> str | None:
        if name.lower().startswith("sqlite_"):
            return f"table name {name!r}: SQLite reserves names starting with 'sqlite_'"
        return None

    def classify(self, orig: BaseException) -> Fault | None:
        code = getattr(orig, "sqlite_errorcode", None)
        return CODES.get(code & 0xFF) if isinstance(code, int) else None

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    def widen_to_float(self, conn: sa.Connection, table: sa.Table, columns: set[str]) -> None:
        """SQLite cannot change a column's type: copy the table into one with float columns
        (inside the batch's transaction), drop it, rename the copy."""
        prep = conn.dialect.identifier_preparer
        temp_name = f"{WIDEN_PREFIX}{table.name}"
        copied = []
        for c in table.columns:
            sql_type = sa.Float if c.name in columns else c.type
            copied.append(sa.Column(c.name, sql_type, primary_key=c.primary_key))
        copy = sa.Table(temp_name, sa.MetaData(), *copied)
        copy.create(conn)
        names = ", ".join(prep.quote(c.name) for c in table.columns)
        old, new = prep.quote(table.name), prep.quote(temp_name)  # names passed the rule
        conn.exec_driver_sql(f"INSERT INTO {new} ({names}) SELECT {names} FROM {old}")  # noqa: S608
        conn.exec_driver_sql(f"DROP TABLE {old}")
        conn.exec_driver_sql(f"ALTER TABLE {new} RENAME TO {old}")

    def guard_model(self, conn: sa.Connection, table: sa.Table, reflected: dict[str, Any]) -> None:
        """A NUMERIC column refuses a number SQLAlchemy would read back as another (it reads
        one through a float rounded to the scale); every other SQLite column keeps its value."""
        for column in table.columns:
            found = reflected.get(column.name)
            if isinstance(found, sa.Numeric) and not isinstance(found, sa.Float):
                column.type = exact_numbers.ReadAsDecimal(
                    column.name, "NUMERIC", found.precision, found.scale, column.type
                )

    def fast_writer(self, dialect: sa.Dialect) -> Writer:
        return SQLiteWriter(dialect)

    def epoch(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        return sa.cast(sa.func.strftime("%s", column), sa.BigInteger)


class SQLiteWriter(Writer):
    """executemany of a plain INSERT with positional parameters under a savepoint; when an
    ``_id`` is already stored (a redelivered batch, a rerun), back to the savepoint, count the
    stored ids and executemany the compiled upsert."""

    bound = True

    def statement(self, info: TableInfo, layout: Layout) -> Any:
        params: dict[str, Any] = {c: sa.bindparam(c) for c in layout.columns}
        plain = info.table.insert().values(params).compile(dialect=self.dialect)
        upsert = conflict.upsert(self.rules, info.table, layout.columns).values(params)
        compiled = upsert.compile(dialect=self.dialect)
        assert list(compiled.positiontup or ()) == layout.columns
        assert list(plain.positiontup or ()) == layout.columns
        return str(plain), str(compiled)

    def insert(self, conn: sa.Connection, info: TableInfo, records: list[Record]) -> int:
        layout, (plain, upsert) = self.prepared(info, records)
        rows = layout.rows(records)
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(plain, rows)  # type: ignore[arg-type]
            return len(rows)
        except sa.exc.IntegrityError:
            pass  # an id already stored, or a constraint the upsert meets again and raises
        stored = count_stored(conn, info.table, [record.id for record in records])
        conn.exec_driver_sql(upsert, rows)  # type: ignore[arg-type]
        return len(rows) - stored


DIALECT = SQLite()
