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


def _json_default(value: Any) -> Any:
    """JSON for values msgpack carries but JSON lacks: datetimes as ISO text, bytes as base64."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot store a value of type {type(value).__name__} as JSON")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get WAL, synchronous=NORMAL and a busy timeout."""
    engine = sa.create_engine(url, json_serializer=_dumps, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=5000")
            if make_url(url).database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

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
