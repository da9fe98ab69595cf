"""MySQL and MariaDB through PyMySQL: exact column types, utf8mb4 and a strict sql_mode on
every connection, reflection that knows MariaDB's JSON and DOUBLE, error codes, and a writer of
multi-row INSERTs bounded by ``max_allowed_packet`` that applies the conflict rule through a
staging table. MySQL commits DDL implicitly: collector.store.ddl says how that stays safe."""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import re
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql

from collector.dialects import mysql_models
from collector.dialects.base import Dialect
from collector.dialects.mysql_writer import MultiRowWriter, StagedWriter
from collector.errors import ConfigError
from collector.store.columns import SQL_TYPE, MetaColumn, kind_of_sql
from collector.store.fault import Fault
from collector.store.writers import Writer

# ANSI_QUOTES: "name" is a name, as in standard SQL (every string literal, ours and PyMySQL's,
# is in single quotes). Set as PyMySQL connects, so SQLAlchemy's first look at the session sees
# it and quotes, and parses SHOW CREATE TABLE, to match. Never NO_BACKSLASH_ESCAPES: PyMySQL
# escapes with backslashes.
SQL_MODE = (
    "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_ENGINE_SUBSTITUTION,ANSI_QUOTES"
)
TRANSIENT = {
    1205: "lock wait timeout", 1213: "deadlock", 2006: "server gone", 2013: "lost connection",
    2003: "cannot connect", 1040: "too many connections", 1053: "server shutdown",
    1290: "read-only", 1792: "read-only transaction", 1927: "connection killed",
    1836: "read-only (replica)", 1030: "storage engine error", 1021: "disk full",
    # a grant, a password or a database to fix, not records to drop (PostgreSQL's 42501 too)
    1044: "access denied to the database", 1045: "access denied", 1049: "unknown database",
    1142: "command denied", 1143: "column access denied", 1227: "privilege needed",
    1698: "access denied",
}  # fmt: skip
RECORDS = {
    1406: "data too long", 1366: "incorrect value", 1264: "out of range", 1118: "row size",
    1117: "too many columns", 1292: "incorrect datetime", 1265: "data truncated",
    1048: "null in a not-null column", 1059: "identifier too long", 1064: "syntax",
    1071: "key too long", 1101: "blob default", 1103: "bad table name", 1166: "bad column name",
    1367: "illegal value", 3140: "invalid JSON", 4025: "check constraint", 1690: "out of range",
    1153: "packet too big", 1054: "unknown column", 1146: "no such table",
    1644: "raised by a trigger (SIGNAL)",
}  # fmt: skip
STALE = {1050: "table exists", 1060: "duplicate column"}
# Any other code is unknown: retried whole a few times, then bisected. So is 1062, a duplicate
# key: only ids counted absent are inserted plainly, so it is a peer's insert of the same id
# (committed by the retry), or a unique key of a model table (then bisected to its record).
# a column's line in SHOW CREATE TABLE ending in MariaDB's JSON check on that column
_JSON_CHECK = re.compile(r'^\s*([`"])((?:(?!\1).|\1\1)+)\1 .* CHECK \(json_valid\(\1\2\1\)\),?$')


class Double(mysql.DOUBLE):  # type: ignore[type-arg]
    """DOUBLE read back as float (a reflected DOUBLE reads as Decimal), refusing with a reason
    the floats MySQL and MariaDB cannot store: NaN, the infinities, and -0.0 (stored as 0.0)."""

    cache_ok = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["asdecimal"] = False
        super().__init__(*args, **kwargs)

    def bind_processor(self, dialect: sa.Dialect) -> Any:
        return _storable


def float_problem(value: float) -> str | None:
    """Why a DOUBLE cannot hold ``value`` as it is: NaN, the infinities, -0.0; else None."""
    if not math.isfinite(value):
        return f"{value}: MySQL and MariaDB have no NaN or infinity (send null)"
    if value == 0 and math.copysign(1.0, value) < 0:
        return "-0.0: MySQL and MariaDB store negative zero as 0.0 (send 0.0)"
    return None


def _storable(value: Any) -> Any:
    """The last guard, for a float the plan did not judge (its records are refused first)."""
    if isinstance(value, float):
        problem = float_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


class Datetime(mysql.DATETIME):
    """DATETIME(6): to the microsecond (a plain DATETIME drops them)."""

    cache_ok = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fsp", 6)
        super().__init__(*args, **kwargs)


TYPES: dict[str, Any] = {
    **SQL_TYPE, "float": Double, "datetime": Datetime, "int": sa.BigInteger,
    "str": mysql.LONGTEXT, "bytes": mysql.LONGBLOB, "json": mysql.JSON,
}  # fmt: skip


class MySQL(Dialect):
    name = "mysql"
    title = "MySQL/MariaDB"
    driver = "pymysql"
    module = "pymysql"
    extra = "mysql"
    types = TYPES
    table_options = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
    refuses_floats = True

    def configure(self, engine: sa.Engine, url: sa.URL) -> None:
        """utf8mb4 and the strict sql_mode on every new connection, set by PyMySQL as it
        connects (before SQLAlchemy's first look at the session). A URL parameter PyMySQL
        does not take is refused here, in one line, not as its TypeError at the first connect."""
        for name in url.query:
            if name not in _url_parameters():
                raise ConfigError(f"database url parameter {name!r} is not one PyMySQL takes")
        reserved = engine.dialect.identifier_preparer.reserved_words

        @event.listens_for(engine, "do_connect")
        def _session(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
            params["charset"] = "utf8mb4"
            params["sql_mode"] = SQL_MODE

        @event.listens_for(engine, "engine_connect")
        def _quoting(conn: sa.Connection) -> None:
            # the dialect's first connection replaced its preparer (for ANSI_QUOTES): keep
            # quoting every name, as make_engine set it up
            prep = conn.dialect.identifier_preparer
            if prep.reserved_words is not reserved:
                prep.reserved_words = reserved

    def limit_lock_waits(self, engine: sa.Engine, seconds: int) -> None:
        """Both lock waits of a session: metadata locks (``LOCK TABLES``, DDL) and InnoDB row
        locks; each fails with error 1205, transient."""

        @event.listens_for(engine, "connect")
        def _lock_waits(dbapi_conn: Any, _record: Any) -> None:
            with dbapi_conn.cursor() as cur:
                cur.execute(
                    f"SET SESSION lock_wait_timeout = {int(seconds)}, "
                    f"innodb_lock_wait_timeout = {int(seconds)}"
                )

    def meta_type(self, conn: sa.Connection, meta: MetaColumn) -> Any:
        """``_id`` as VARCHAR(255) (1020 bytes of utf8mb4, under InnoDB's key limit) in a
        binary collation without padding, so ids differing in case or trailing spaces stay
        apart; the others by their kind."""
        if meta.name == "_id":
            return mysql.VARCHAR(255, charset="utf8mb4", collation=mysql_models.nopad(conn))
        if meta.name == "_pid":
            return sa.Integer()
        return self.types[kind_of_sql(meta.sql_type())]()

    def float_problem(self, value: float) -> str | None:
        return float_problem(value)

    def classify(self, orig: BaseException) -> Fault | None:
        args = getattr(orig, "args", ())
        code = args[0] if args and isinstance(args[0], int) else None
        if code is None or type(orig).__module__.partition(".")[0] != "pymysql":
            return None
        if code in TRANSIENT:
            return Fault.TRANSIENT
        if code in STALE:
            return Fault.STALE
        if code in RECORDS:
            return Fault.RECORDS
        return Fault.UNKNOWN

    def insert(self, table: sa.Table) -> Any:
        return mysql.insert(table)

    def add_column(self, conn: sa.Connection, table: sa.Table, column: str, kind: str) -> None:
        """ADD COLUMN IF NOT EXISTS on MariaDB (a peer or a crashed attempt may have made it);
        MySQL's duplicate-column error is classified stale instead."""
        prep = conn.dialect.identifier_preparer
        sql_type = self.types[kind]().compile(dialect=conn.dialect)
        exists = " IF NOT EXISTS" if conn.dialect.is_mariadb else ""  # type: ignore[attr-defined]
        conn.exec_driver_sql(
            f"ALTER TABLE {prep.format_table(table)} ADD COLUMN{exists} "
            f"{prep.quote(column)} {sql_type}"
        )

    @contextlib.contextmanager
    def writes_locked(self, conn: sa.Connection, table: sa.Table) -> Iterator[None]:
        """LOCK TABLES ... WRITE (it waits for peers' transactions on the table to end, and
        commits ours, which the DDL before it has done already), released however it ends."""
        prep = conn.dialect.identifier_preparer
        conn.exec_driver_sql(f"LOCK TABLES {prep.format_table(table)} WRITE")
        try:
            yield
        finally:
            conn.exec_driver_sql("UNLOCK TABLES")

    def widen_to_float(self, conn: sa.Connection, table: sa.Table, columns: set[str]) -> None:
        prep = conn.dialect.identifier_preparer
        double = Double().compile(dialect=conn.dialect)
        changes = ", ".join(f"MODIFY COLUMN {prep.quote(c)} {double}" for c in sorted(columns))
        conn.exec_driver_sql(f"ALTER TABLE {prep.format_table(table)} {changes}")

    def create_exact(self, conn: sa.Connection, table: sa.Table) -> None:
        mysql_models.create_exact(table, Datetime, Double, mysql_models.nopad(conn))

    def guard_model(self, conn: sa.Connection, table: sa.Table, reflected: dict[str, Any]) -> None:
        mysql_models.guard(table, reflected)
        mysql_models.guard_id(conn, table)

    def fast_writer(self, dialect: sa.Dialect) -> Writer:
        return MultiRowWriter(dialect)

    def generic_writer(self, dialect: sa.Dialect) -> Writer:
        return StagedWriter(dialect)

    def epoch(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        # not UNIX_TIMESTAMP, which reads the DATETIME in the session's time zone
        since = sa.func.timestampdiff(sa.text("SECOND"), sa.literal("1970-01-01 00:00:00"), column)
        return sa.cast(since, sa.BigInteger)


@functools.cache
def _url_parameters() -> frozenset[str]:
    """What a URL's query may hold: PyMySQL's connect() keywords, and the ssl_* keys
    SQLAlchemy gathers into its ``ssl`` dict."""
    import pymysql

    ssl = {"ssl_ca", "ssl_key", "ssl_cert", "ssl_capath", "ssl_cipher", "ssl_check_hostname"}
    return frozenset(inspect.signature(pymysql.connections.Connection).parameters) | ssl


@event.listens_for(sa.Table, "column_reflect")
def _reflected(inspector: sa.Inspector, table: sa.Table, column: dict[str, Any]) -> None:
    """Reflected types as the collector made them: DOUBLE as float, BLOBs as bytes,
    TINYINT(1) as bool, and
    MariaDB's JSON (a LONGTEXT with a ``json_valid`` check) as JSON."""
    if inspector.dialect.name not in ("mysql", "mariadb"):
        return
    sql_type = column["type"]
    if isinstance(sql_type, mysql.DOUBLE):
        column["type"] = Double()
    elif isinstance(sql_type, sa.types._Binary) and not isinstance(sql_type, sa.LargeBinary):
        column["type"] = sa.LargeBinary()  # MySQL's BLOB types are not LargeBinary's subclasses
    elif isinstance(sql_type, mysql.TINYINT) and sql_type.display_width == 1:
        column["type"] = sa.Boolean()
    elif isinstance(sql_type, mysql.LONGTEXT) and column["name"] in _json_columns(
        inspector, table.name
    ):
        column["type"] = mysql.JSON()


def _json_columns(inspector: sa.Inspector, table: str) -> set[str]:
    """The columns of ``table`` with MariaDB's ``json_valid`` check, from SHOW CREATE TABLE
    (reflection has just read it too). Never information_schema.CHECK_CONSTRAINTS: MariaDB
    10.11 segfaulted on that query under concurrent load (in free_tmp_table)."""
    key = ("rc_json_columns", table)
    cache = inspector.info_cache
    if key not in cache:
        bind = inspector.bind
        prep = inspector.dialect.identifier_preparer
        query = f"SHOW CREATE TABLE {prep.quote_identifier(table)}"
        if isinstance(bind, sa.Connection):
            created = bind.exec_driver_sql(query).one()[1]
        else:
            with bind.connect() as conn:
                created = conn.exec_driver_sql(query).one()[1]
        found = (_JSON_CHECK.search(line) for line in str(created).splitlines())
        cache[key] = {m.group(2).replace(m.group(1) * 2, m.group(1)) for m in found if m}
    columns: set[str] = cache[key]
    return columns


DIALECT = MySQL()
