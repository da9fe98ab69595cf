"""``collector export TABLE --format hdf5 -o F``: a table, scalars and arrays, in one HDF5 file.

Layout (h5py alone reads it), for R rows in export order:

- ``/<table>/<column>``: one dataset of R values per scalar column: int64, float64 or bool;
  text, JSON (as its text) and datetimes (ISO 8601, UTC) as UTF-8 strings;
- ``/<table>/_null/<column>``: R booleans, true where the value is NULL (the dataset then holds
  0, NaN-free 0.0, false or "");
- a binary column is a group: its arrays as the ``--arrays`` file lays them out,
  ``/<table>/<column>/<dtype>_<shape>/{data, _id}`` (collector.arrays.layout), and other bytes
  in ``/<table>/<column>/bytes/{data, _id}`` (variable-length uint8). ``_id`` joins them to
  ``/<table>/_id``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from typing import IO, Any

import sqlalchemy as sa

from collector.arrays.layout import (
    H5PY_MISSING,
    ArrayReader,
    create_group,
    is_pointer,
    kind_name,
    storage_dtype,
)
from collector.errors import CommandFailed
from collector.store import kind_of_sql
from workers.arrays import is_array_payload, to_numpy

_NUMERIC = {"int": "i8", "float": "f8", "bool": "?"}
_EMPTY = {"int": 0, "float": 0.0, "bool": False}


def write_hdf5(
    columns: list[sa.Column[Any]],
    chunks: Iterable[Sequence[Sequence[Any]]],
    sink: IO[bytes],
    *,
    table: str,
    arrays: str | None = None,
) -> None:
    """Write every chunk of rows of ``table`` into an HDF5 file on ``sink`` (seekable)."""
    try:
        import h5py
        import numpy
    except ImportError:
        raise CommandFailed(H5PY_MISSING) from None
    kinds = [kind_of_sql(c.type) for c in columns]
    with tempfile.TemporaryFile() as scratch:  # h5py reads what it writes: ``sink`` may not
        with h5py.File(scratch, "w", libver="latest") as file:
            reader = _fill(file, table, columns, kinds, chunks, arrays, h5py, numpy)
        if reader is not None:
            reader.close()
        scratch.seek(0)
        shutil.copyfileobj(scratch, sink, 1 << 20)


def _fill(
    file: Any, table: str, columns: list[sa.Column[Any]], kinds: list[str],
    chunks: Iterable[Sequence[Sequence[Any]]], arrays: str | None, h5py: Any, numpy: Any,
) -> ArrayReader | None:  # fmt: skip
    """Write the rows into ``file``; the reader of the --arrays file, if it was needed."""
    reader: ArrayReader | None = None
    ids_at = [c.name for c in columns].index("_id")
    root = file.create_group(table)
    text = h5py.string_dtype("utf-8")
    for column, kind in zip(columns, kinds, strict=True):
        if kind == "bytes":
            root.create_group(column.name)
            continue
        dtype = _NUMERIC.get(kind, text)
        root.create_dataset(column.name, (0,), maxshape=(None,), dtype=dtype, chunks=(4096,))
        root.create_dataset(f"_null/{column.name}", (0,), maxshape=(None,), dtype="?")
    done = 0
    for chunk in chunks:
        rows = len(chunk)
        for index, (column, kind) in enumerate(zip(columns, kinds, strict=True)):
            values = [row[index] for row in chunk]
            if kind == "bytes":
                for rid, value in zip((r[ids_at] for r in chunk), values, strict=True):
                    if value is None:
                        continue
                    if is_pointer(value) and reader is None:
                        reader = _reader(arrays)
                    _binary(root[column.name], rid, bytes(value), reader, numpy, h5py)
                continue
            nulls = [v is None for v in values]
            filled = [_EMPTY.get(kind, "") if v is None else _cell(v, kind) for v in values]
            for name, data in ((column.name, filled), (f"_null/{column.name}", nulls)):
                dataset = root[name]
                dataset.resize(done + rows, axis=0)
                dataset[done:] = data
        done += rows
    return reader


def _reader(arrays: str | None) -> ArrayReader:
    if not arrays:
        raise CommandFailed("the table points at arrays in an HDF5 file: pass --arrays FILE.h5")
    return ArrayReader(arrays)


def _cell(value: Any, kind: str) -> Any:
    """A scalar as the dataset of its kind holds it."""
    if kind in _NUMERIC:
        return value
    if kind == "datetime":
        return value.isoformat()
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _binary(
    group: Any, rid: str, value: bytes, reader: ArrayReader | None, np: Any, h5: Any
) -> None:
    """Append one binary cell to its column's group: an array to its dtype and shape, bytes
    to ``bytes``."""
    if is_array_payload(value) or is_pointer(value):
        if is_array_payload(value):
            array = to_numpy(value)
        else:
            assert reader is not None
            array = reader.load(value, rid)
        name = kind_name(array.dtype.str, array.shape)
        if name not in group:
            create_group(group, name, array.dtype, array.shape)
        target, stored = group[name], array.view(storage_dtype(array.dtype))
    else:
        if "bytes" not in group:
            sub = group.create_group("bytes")
            sub.create_dataset("data", (0,), maxshape=(None,), dtype=h5.vlen_dtype(np.uint8))
            sub.create_dataset("_id", (0,), maxshape=(None,), dtype=h5.string_dtype("utf-8"))
        target, stored = group["bytes"], np.frombuffer(value, np.uint8)
    slot = target["data"].shape[0]
    for name in ("data", "_id"):
        target[name].resize(slot + 1, axis=0)
    target["data"][slot] = stored
    target["_id"][slot] = rid.encode()
