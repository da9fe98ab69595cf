"""Opening the database: the engine with SQLite's pragmas and JSON encoding, whether a database
exists, and row counts."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from collector.netfs import journal_mode


def _json_default(value: Any) -> Any:
    """JSON for values msgpack carries but JSON lacks: datetimes as ISO text, bytes as base64."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot store a value of type {type(value).__name__} as JSON")


def _dumps(value: Any) -> str:
    """Standard JSON only: NaN and infinities have no JSON form (PostgreSQL refuses them, and
    so do SQLite's JSON functions), so a list or dict holding one is refused on every database,
    and its record dead-lettered with this reason, rather than stored as text no JSON reader
    takes."""
    try:
        return json.dumps(value, default=_json_default, allow_nan=False)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        raise ValueError(
            "NaN or infinity inside a list or dict: JSON has no such numbers "
            "(send null, or the value as text)"
        ) from None


class _Everything(set[str]):
    """A reserved-word set that holds every word, so the dialect quotes every identifier."""

    def __contains__(self, item: object) -> bool:
        return True


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url`` that quotes every identifier it renders (a name that matched the
    identifier rule is an ordinary name, even where a dialect's keyword list lags behind its
    parser, as SQLite's ``nothing`` and ``returning`` do). SQLite files get WAL,
    synchronous=NORMAL, a busy timeout, and transactions that SQLAlchemy begins itself, so a
    schema change commits or rolls back with its batch (the driver would run DDL outside)."""
    engine = sa.create_engine(url, json_serializer=_dumps, pool_pre_ping=True)
    engine.dialect.identifier_preparer.reserved_words = _Everything()
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # no implicit BEGIN: ours, below, covers DDL too
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=5000")
            if make_url(url).database not in (None, "", ":memory:"):
                cur.execute(f"PRAGMA journal_mode={journal_mode(make_url(url).database)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN")

    return engine


def sqlite_path(url: str) -> str | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return os.path.abspath(parsed.database)


def database_exists(url: str) -> bool:
    """False only for a SQLite file that is not there (opening it would create an empty one)."""
    path = sqlite_path(url)
    return path is None or os.path.exists(path)


def count_rows(conn: sa.Connection, table: str) -> int:
    """Rows in ``table``, a name that already passed the identifier rule."""
    return int(conn.scalar(sa.select(sa.func.count()).select_from(sa.table(table))) or 0)


def row_count(engine: sa.Engine, table: str) -> int:
    """Rows in ``table``; 0 while it does not exist."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(table):
            return 0
        return count_rows(conn, table)
