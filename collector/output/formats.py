"""The formats ``collector export`` writes, each a function of (columns, chunks of rows, a binary
sink): CSV (header row, NULL as empty), JSON lines (strict JSON: NaN and infinities as null),
Parquet (types from the SQL columns). An array cell is a JSON object in CSV and JSON lines
(collector.arrays.cells), its stored bytes in Parquet."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

import sqlalchemy as sa

from collector.arrays.cells import array_cell
from collector.store import kind_of_sql

PYARROW_MISSING = "parquet export needs pyarrow: pip install 'result-collector[data]'"
Chunks = Iterable[Sequence[Sequence[Any]]]


def _json_default(value: Any) -> Any:
    """JSON for what the database returns but JSON lacks: datetimes, bytes (base64), decimals,
    and anything else (a UUID, say) as its text."""
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return array_cell(bytes(value)) or base64.b64encode(bytes(value)).decode()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


def csv_cell(value: Any) -> Any:
    """One CSV cell: empty for NULL, true/false, ISO datetimes, base64 bytes, JSON for lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, list | dict):
        return to_json(value, ensure_ascii=False)
    if isinstance(value, bytes) and (cell := array_cell(value)) is not None:
        return json.dumps(cell)  # an array: dtype, shape and its bytes, or where it is
    return _json_default(value)


def write_csv(columns: list[sa.Column], chunks: Chunks, sink: IO[bytes]) -> None:
    """A header row, then one line per row."""
    text = io.TextIOWrapper(sink, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow([c.name for c in columns])
    for chunk in chunks:
        writer.writerows([csv_cell(v) for v in row] for row in chunk)
    text.flush()
    text.detach()


def write_jsonl(columns: list[sa.Column], chunks: Chunks, sink: IO[bytes]) -> None:
    """One JSON object per row and line, keys in column order; only JSON: NaN and infinities
    (a float column's, or one inside a JSON column) are written as null."""
    names = [c.name for c in columns]
    text = io.TextIOWrapper(sink, encoding="utf-8", newline="\n")
    for chunk in chunks:
        text.writelines(to_json(dict(zip(names, row, strict=True))) + "\n" for row in chunk)
    text.flush()
    text.detach()


def to_json(value: Any, *, ensure_ascii: bool = True) -> str:
    """``value`` as strict JSON text: NaN and infinities, at any depth, as null."""
    try:
        return json.dumps(value, default=_json_default, allow_nan=False, ensure_ascii=ensure_ascii)
    except ValueError:  # a NaN or infinity somewhere: the rare value pays for a second pass
        finite = _finite(value)
        return json.dumps(finite, default=_json_default, allow_nan=False, ensure_ascii=ensure_ascii)


def _finite(value: Any) -> Any:
    """``value`` with every NaN and infinity, at any depth, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, decimal.Decimal) and not value.is_finite():
        return None
    return value


def write_parquet(columns: list[sa.Column], chunks: Chunks, sink: IO[bytes]) -> None:
    """Parquet with one row group per chunk; column types come from the SQL types, not values."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "bytes": pa.binary(),
        "datetime": pa.timestamp("us"),
        "str": pa.string(),
    }
    names = [c.name for c in columns]
    kinds = [kind_of_sql(c.type) for c in columns]
    schema = pa.schema([(n, arrow.get(k, pa.string())) for n, k in zip(names, kinds, strict=True)])
    as_text = [i for i, k in enumerate(kinds) if k not in arrow]
    with pq.ParquetWriter(sink, schema) as writer:
        for chunk in chunks:
            cols = [list(col) for col in zip(*chunk, strict=True)] or [[] for _ in names]
            for i in as_text:
                cols[i] = [None if v is None else _text_of(v) for v in cols[i]]
            writer.write_batch(pa.RecordBatch.from_arrays(cols, schema=schema))


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    return to_json(value, ensure_ascii=False)


WRITERS: dict[str, Callable[[list[sa.Column], Chunks, IO[bytes]], None]] = {
    "csv": write_csv,
    "jsonl": write_jsonl,
    "parquet": write_parquet,
}
