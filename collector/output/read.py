"""``collector.read``: a collected table as a pandas DataFrame, for a notebook; array values
(binary values that begin with the array marker, see workers.arrays) come back as numpy arrays."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import sqlalchemy as sa

from collector.output.tables import open_table
from collector.settings import DEFAULT_DB_URL
from workers.arrays import is_array_payload, to_numpy

if TYPE_CHECKING:
    import pandas

PANDAS_MISSING = "collector.read needs pandas: pip install 'result-collector[data]'"


def read(table: str, db_url: str | None = None) -> pandas.DataFrame:
    """The whole table as a DataFrame; ``db_url`` defaults to COLLECTOR_DB_URL, then the
    contract's ``sqlite:///results.db``. Array cells are numpy arrays of their dtype and shape.
    Needs pandas (the ``data`` extra)."""
    try:
        import pandas
    except ImportError:
        raise ImportError(PANDAS_MISSING) from None
    url = db_url or os.environ.get("COLLECTOR_DB_URL") or DEFAULT_DB_URL
    with open_table(url, table) as (conn, tbl):
        frame = pandas.read_sql_query(sa.select(tbl), conn)
    binary = [c.name for c in tbl.columns if isinstance(c.type, sa.LargeBinary)]
    for name in binary:
        column = frame[name]
        if any(map(is_array_payload, column)):
            frame[name] = pandas.Series(
                [to_numpy(v) if is_array_payload(v) else v for v in column],
                index=frame.index, dtype=object,
            )  # fmt: skip
    return frame
