"""Opening a collected table by name: the name checked against the identifier rule before any
SQL, the database opened without creating anything, the table reflected as it is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from collector.db import database_exists, make_engine
from collector.errors import ConfigError, NoSuchTable
from collector.settings import mask_db_url
from workers.checks import IDENTIFIER, is_identifier


def check_table_name(name: str) -> str:
    """``name`` itself if it may be a table name; ConfigError otherwise (it never reaches SQL)."""
    if not is_identifier(name):
        raise ConfigError(f"bad table name {name!r}: must match {IDENTIFIER.pattern}")
    return name


@contextmanager
def open_table(db_url: str, name: str) -> Iterator[tuple[sa.Connection, sa.Table]]:
    """A connection and the reflected table ``name``; NoSuchTable when it does not exist."""
    check_table_name(name)
    if not database_exists(db_url):
        raise NoSuchTable(f"no table {name!r}: the database {mask_db_url(db_url)} does not exist")
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            try:
                table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            except sa_exc.NoSuchTableError:
                raise NoSuchTable(f"no table {name!r} in {mask_db_url(db_url)}") from None
            yield conn, table
    finally:
        engine.dispose()
