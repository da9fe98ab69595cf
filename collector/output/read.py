"""``collector.read``: a collected table as a pandas DataFrame, for a notebook."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import sqlalchemy as sa

from collector.output.tables import open_table
from collector.settings import DEFAULT_DB_URL

if TYPE_CHECKING:
    import pandas

PANDAS_MISSING = "collector.read needs pandas: pip install 'result-collector[data]'"


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
