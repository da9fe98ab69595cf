"""Reading a collected table back by name: checked against the identifier rule before any SQL,
opened without creating anything, and (``read``) loaded into a pandas DataFrame for a notebook."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from collector.db import database_exists, make_engine
from collector.errors import ConfigError, NoSuchTable
from collector.settings import DEFAULT_DB_URL, mask_db_url
from workers.record import IDENTIFIER, is_identifier

if TYPE_CHECKING:
    import pandas

PANDAS_MISSING = "collector.read needs pandas: pip install 'result-collector[data]'"


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


def read(table: str, db_url: str | None = None) -> pandas.DataFrame:
    """The whole table as a DataFrame; ``db_url`` defaults to COLLECTOR_DB_URL, then the
    contract's ``sqlite:///results.db``. Needs pandas (the ``data`` extra)."""
    try:
        import pandas
    except ImportError:
        raise ImportError(PANDAS_MISSING) from None
    url = db_url or os.environ.get("COLLECTOR_DB_URL") or DEFAULT_DB_URL
    with open_table(url, table) as (conn, tbl):
        return pandas.read_sql_query(sa.select(tbl), conn)
