"""PostgreSQL through psycopg 3: SQLSTATE classes, system column names, ALTER COLUMN ... TYPE
for widening, and COPY as the fast writer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql

from collector.dialects import postgresql_models
from collector.dialects.base import Dialect
from collector.store import conflict
from collector.store.fault import Fault
from collector.store.schema import TableInfo
from collector.store.writers import Layout, Writer
from workers.record import Record

SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})
# SQLSTATE: whole classes (two characters), then the exceptions inside them.
CLASSES = {
    "08": Fault.TRANSIENT,  # connection exception
    "40": Fault.TRANSIENT,  # transaction rollback: serialization failure, deadlock
    "53": Fault.TRANSIENT,  # insufficient resources: disk full, out of memory, connections
    "57": Fault.TRANSIENT,  # operator intervention: shutdown, cannot connect now
    "58": Fault.TRANSIENT,  # system error: I/O
    "21": Fault.RECORDS,  # cardinality violation
    "22": Fault.RECORDS,  # data exception: bad value, out of range, NUL byte
    "23": Fault.RECORDS,  # integrity constraint violation
    "42": Fault.RECORDS,  # syntax error or access rule violation: refused names, DDL
    "44": Fault.RECORDS,  # WITH CHECK OPTION violation
    "54": Fault.RECORDS,  # program limit exceeded: too many columns, row too big
    "0A": Fault.RECORDS,  # feature not supported
    "P0": Fault.RECORDS,  # raised by a trigger or function
}
STATES = {
    "25006": Fault.TRANSIENT,  # read-only transaction (a standby, default_transaction_read_only)
    "42501": Fault.TRANSIENT,  # insufficient privilege: a grant to fix, not a record to drop
    "55P03": Fault.TRANSIENT,  # lock not available
    "55006": Fault.TRANSIENT,  # object in use
    "42P07": Fault.STALE,  # duplicate table (or a table named like an index: records, if again)
    "42701": Fault.STALE,  # duplicate column
    "42710": Fault.STALE,  # duplicate object
}
# Two collectors' CREATE TABLEs of one name at once: the loser trips over the unique index of
# the row types. Unknown, so the batch is retried whole after a pause (by then the peer has
# committed and the schema, read again, has the table); bisecting it at once would dead-letter
# records while the peer's transaction is still open. Never retried forever: UNKNOWN_RETRIES.
RACE = "pg_type_typname_nsp_index"
STAGE = "_rc_stage"  # a temporary table, dropped at commit; no record's name starts with "_"
UNIQUE_VIOLATION = "23505"


class PostgreSQL(Dialect):
    name = "postgresql"
    title = "PostgreSQL"
    driver = "psycopg"
    module = "psycopg"
    extra = "postgres"

    def limit_lock_waits(self, engine: sa.Engine, seconds: int) -> None:
        """``lock_timeout`` for the session (error 55P03, transient), committed at once: a SET
        inside the transaction the driver opens would be rolled back with it."""

        @event.listens_for(engine, "connect")
        def _lock_waits(dbapi_conn: Any, _record: Any) -> None:
            with dbapi_conn.cursor() as cur:
                cur.execute(f"SET lock_timeout = '{int(seconds)}s'")
            dbapi_conn.commit()

    def column_problem(self, name: str) -> str | None:
        if name in SYSTEM_COLUMNS:
            return f"column name {name!r}: a PostgreSQL system column"
        return None

    def classify(self, orig: BaseException) -> Fault | None:
        state = getattr(orig, "sqlstate", None)
        if not isinstance(state, str) or len(state) != 5:
            return None
        if state == UNIQUE_VIOLATION and RACE in str(orig):
            return Fault.UNKNOWN
        return STATES.get(state) or CLASSES.get(state[:2], Fault.UNKNOWN)

    def insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    @contextlib.contextmanager
    def writes_locked(self, conn: sa.Connection, table: sa.Table) -> Iterator[None]:
        """SHARE ROW EXCLUSIVE until the commit: waits for peers' inserts under way, holds
        off new ones and other widenings (the ALTER would convert what they commit)."""
        prep = conn.dialect.identifier_preparer
        conn.exec_driver_sql(f"LOCK TABLE {prep.format_table(table)} IN SHARE ROW EXCLUSIVE MODE")
        yield

    def widen_to_float(self, conn: sa.Connection, table: sa.Table, columns: set[str]) -> None:
        prep = conn.dialect.identifier_preparer
        float_sql = sa.Float().compile(dialect=conn.dialect)
        for column in sorted(columns):
            quoted = prep.quote(column)
            conn.exec_driver_sql(
                f"ALTER TABLE {prep.format_table(table)} ALTER COLUMN {quoted} "
                f"TYPE {float_sql} USING {quoted}::{float_sql}"
            )

    def guard_model(self, conn: sa.Connection, table: sa.Table, reflected: dict[str, Any]) -> None:
        postgresql_models.guard(table, reflected)

    def fast_writer(self, dialect: sa.Dialect) -> Writer:
        return CopyWriter(dialect)


class CopyWriter(Writer):
    """COPY straight into the table under a savepoint; if an ``_id`` is already there (a
    redelivered batch, a rerun), roll back to the savepoint, COPY into a temporary table, count
    the ids already stored and upsert from it."""

    bound = True
    text_ts = True  # COPY's text format parses ISO timestamps exactly

    def statement(self, info: TableInfo, layout: Layout) -> Any:
        prep = self.dialect.identifier_preparer
        columns = ", ".join(prep.quote(c) for c in layout.columns)
        stage = sa.table(STAGE, *(sa.column(c) for c in layout.columns))
        select = sa.select(*(stage.c[c] for c in layout.columns))
        stmt = postgresql.insert(info.table).from_select(layout.columns, select)
        upsert = conflict.with_rule(stmt, info.table, layout.columns)
        table, staged = prep.format_table(info.table), prep.quote(STAGE)
        return (
            f"COPY {table} ({columns}) FROM STDIN",
            f"CREATE TEMPORARY TABLE {staged} ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {columns} FROM {table} WITH NO DATA",
            f"COPY {staged} ({columns}) FROM STDIN",
            f'SELECT count(*) FROM {staged} JOIN {table} USING ("_id")',  # noqa: S608
            str(upsert.compile(dialect=self.dialect)),
            f"DROP TABLE {staged}",
        )

    def insert(self, conn: sa.Connection, info: TableInfo, records: list[Record]) -> int:
        layout, (copy, *staged) = self.prepared(info, records)
        rows = layout.rows(records)
        raw = conn.connection.dbapi_connection
        dbapi = self.dialect.loaded_dbapi
        statement, stored = "SAVEPOINT rc_copy", 0
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
                    if getattr(exc, "sqlstate", None) != UNIQUE_VIOLATION:
                        raise
                    cur.execute("ROLLBACK TO SAVEPOINT rc_copy")
                for statement in staged:
                    if statement.startswith("COPY"):
                        _copy(cur, statement, rows)
                    else:
                        cur.execute(statement)
                        if statement.startswith("SELECT"):
                            stored = cur.fetchone()[0]
        except dbapi.Error as exc:  # the same exception classes SQLAlchemy's own calls raise
            raise sa_exc.DBAPIError.instance(
                statement, None, exc, dbapi.Error, dialect=self.dialect
            ) from exc
        return len(rows) - stored


def _copy(cur: Any, statement: str, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


DIALECT = PostgreSQL()
