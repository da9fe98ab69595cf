"""``collector.read``: a collected table as a pandas DataFrame, for a notebook; array values
(binary values that begin with the array marker, see workers.arrays) come back as numpy arrays."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import sqlalchemy as sa

from collector.arrays.layout import ArrayReader, is_pointer
from collector.errors import ConfigError
from collector.output.tables import open_table
from collector.settings import DEFAULT_DB_URL
from workers.arrays import is_array_payload, to_numpy

if TYPE_CHECKING:
    import pandas

PANDAS_MISSING = "collector.read needs pandas: pip install 'result-collector[data]'"


def read(table: str, db_url: str | None = None, arrays: str | None = None) -> pandas.DataFrame:
    """The whole table as a DataFrame; ``db_url`` defaults to COLLECTOR_DB_URL, then the
    contract's ``sqlite:///results.db``. An int column holding a NULL is pandas' Int64 (exact,
    where float64 would round). Array cells are numpy arrays of their dtype and shape,
    from the row or from the HDF5 file ``arrays`` (default: COLLECTOR_ARRAYS) the collector
    wrote them to. Needs pandas (the ``data`` extra)."""
    try:
        import pandas
    except ImportError:
        raise ImportError(PANDAS_MISSING) from None
    url = db_url or os.environ.get("COLLECTOR_DB_URL") or DEFAULT_DB_URL
    with open_table(url, table) as (conn, tbl):
        result = conn.execute(sa.select(tbl))
        names, rows = list(result.keys()), result.all()
    frame = pandas.DataFrame.from_records(rows, columns=names, coerce_float=True)  # as read_sql
    for position, column in enumerate(tbl.columns):
        if _holds_ints(column.type) and frame[column.name].dtype.kind == "f":  # a NULL among them
            ints = [row[position] for row in rows]
            frame[column.name] = pandas.array(ints, dtype="Int64")  # float64 would round them
    binary = [c.name for c in tbl.columns if isinstance(c.type, sa.LargeBinary)]
    reader: ArrayReader | None = None
    try:
        for name in binary:
            column = frame[name]
            if any(map(is_pointer, column)) and reader is None:
                reader = ArrayReader(_arrays_file(table, arrays))
            if reader is not None or any(map(is_array_payload, column)):
                ids = frame["_id"] if "_id" in frame else [None] * len(column)
                values = [_value(v, reader, rid) for v, rid in zip(column, ids, strict=True)]
                frame[name] = pandas.Series(values, index=frame.index, dtype=object)
    finally:
        if reader is not None:
            reader.close()
    return frame


def _holds_ints(sql_type: sa.types.TypeEngine[object]) -> bool:
    return isinstance(sql_type, sa.Integer) and not isinstance(sql_type, sa.Boolean)


def _arrays_file(table: str, arrays: str | None) -> str:
    path = arrays or os.environ.get("COLLECTOR_ARRAYS")
    if not path:
        raise ConfigError(
            f"table {table!r} points at arrays in an HDF5 file: pass arrays=PATH "
            "or set COLLECTOR_ARRAYS"
        )
    return path


def _value(value: object, reader: ArrayReader | None, rid: str | None) -> object:
    """A binary cell (of the row ``rid``) as read gives it: an array from the row or from the
    file, else itself."""
    if is_array_payload(value):
        return to_numpy(value)  # type: ignore[arg-type]
    if reader is not None and is_pointer(value):
        return reader.load(value, rid)  # type: ignore[arg-type]
    return value
