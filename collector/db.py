"""Opening the database: the engine (refused unless its database has a dialect module, set up
by it) with our JSON encoding, whether a database exists, and row counts."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from collector import dialects

# How long a statement waits for a lock someone else holds (a user's LOCK TABLES, a long
# transaction) before it fails: the collector then backs off as in an outage and ``status``
# says why, rather than waiting a server's default (a day on MariaDB, forever on PostgreSQL).
LOCK_WAIT_SECONDS = 10


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
    """An engine for ``url``, a database with a dialect module (collector.dialects; any other
    is refused in one line, a ConfigError), set up by that dialect. It quotes every identifier
    it renders (a name that matched the identifier rule is an ordinary name, even where a
    dialect's keyword list lags behind its parser, as SQLite's ``nothing`` and ``returning``
    do)."""
    dialect, parsed = dialects.resolve(url)
    engine = sa.create_engine(parsed, json_serializer=_dumps, pool_pre_ping=True)
    engine.dialect.identifier_preparer.reserved_words = _Everything()
    dialect.configure(engine, parsed)
    dialect.limit_lock_waits(engine, LOCK_WAIT_SECONDS)
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
