"""The HDF5 file of ``--arrays``: its layout, the pointer a row stores, reading an array back.

Layout (readable with h5py alone): one group per table, column, dtype and shape,
``/<table>/<column>/<dtype>_<shape>`` (``f4_3x4``, ``be_f8_100``, ``M8[ns]_5``, ``f8_scalar``),
holding two datasets of one length N:

- ``data``: shape ``(N, *shape)``, the arrays stacked along the first axis; its attribute
  ``dtype`` is numpy's ``dtype.str`` of the arrays as sent (datetime64 and timedelta64 are
  stored as int64: ``as_sent`` turns what h5py reads back into that dtype);
- ``_id``: N fixed-length UTF-8 strings, the record id whose row points at each slot, written
  after that row committed. An empty ``_id`` is a slot no committed row points at (a crash
  or a duplicate between writing the array and committing the row): skip it.

The file's root attribute ``collector_file`` is its identity, 32 hex digits chosen when the
collector first opened it. A row's array column holds a pointer, ``b"\\x93RCREF\\x02"`` + that
identity (16 bytes) + the group path in UTF-8 + a zero byte + the slot as an unsigned 64-bit
little-endian integer: a pointer is followed only into the file it was written to, never into
another file at the same path or another file of the same database.
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from collector.errors import ConfigError
from workers.arrays import MAX_NDIM

if TYPE_CHECKING:
    import h5py
    import numpy

POINTER = b"\x93RCREF\x02"
FILE_ID = "collector_file"  # the root attribute: the file's identity, in every pointer into it
ID_BYTES = 255  # the longest record id the ``_id`` dataset holds, in UTF-8 bytes
CHUNK_BYTES = 1 << 20  # about this much data per chunk: whole arrays, at least one
H5PY_MISSING = "--arrays needs h5py: pip install 'result-collector[hdf5]'"


def group_name(table: str, column: str, dtype: str, shape: tuple[int, ...]) -> str:
    """The group of one table, column, dtype (numpy's ``dtype.str``) and shape."""
    return f"/{table}/{column}/{kind_name(dtype, shape)}"


def kind_name(dtype: str, shape: tuple[int, ...]) -> str:
    """``f4_3x4``, ``be_f8_100``, ``f8_scalar``: the last part of a group's name."""
    code = dtype[1:] if dtype[0] in "<|" else f"be_{dtype[1:]}"
    return f"{code}_{'x'.join(map(str, shape)) or 'scalar'}"


class Ref(NamedTuple):
    """What a pointer names: the file (its identity), the group and the slot."""

    file: bytes
    group: str
    slot: int


def pointer(file: bytes, group: str, slot: int) -> bytes:
    return b"".join((POINTER, file, group.encode(), b"\x00", struct.pack("<Q", slot)))


def is_pointer(value: object) -> bool:
    return isinstance(value, bytes) and value.startswith(POINTER)


def parse_pointer(value: bytes) -> Ref:
    """The file identity, the group path and the slot a pointer names."""
    at = len(POINTER) + 16
    return Ref(value[len(POINTER) : at], value[at:-9].decode(), struct.unpack("<Q", value[-8:])[0])


def file_id(file: h5py.File) -> bytes | None:
    """The identity of an open file (None: no collector wrote it)."""
    text = file.attrs.get(FILE_ID)
    if isinstance(text, bytes):
        text = text.decode()
    return bytes.fromhex(text) if isinstance(text, str) and len(text) == 32 else None


def new_file_id(file: h5py.File) -> bytes:
    """Give a file opened for writing (outside SWMR mode) an identity, once; returns it."""
    known = file_id(file)
    if known is None:
        known = uuid.uuid4().bytes
        file.attrs[FILE_ID] = known.hex()
    return known


def storage_dtype(dtype: numpy.dtype[Any]) -> numpy.dtype[Any]:
    """What h5py stores for ``dtype``: itself, or int64 for datetime64 and timedelta64."""
    import numpy

    return numpy.dtype(f"{dtype.str[0]}i8") if dtype.kind in "Mm" else dtype


def as_sent(stored: numpy.ndarray, dtype: str) -> numpy.ndarray:
    """An array as h5py read it, as it was sent: ``dtype`` (int64 back to datetime64)."""
    import numpy

    want = numpy.dtype(dtype)
    return stored.astype(storage_dtype(want)).view(want)


def create_group(file: h5py.File, name: str, dtype: numpy.dtype[Any], shape: tuple[int, ...]):
    """The ``data`` and ``_id`` datasets of a new group, empty, growing along the first axis."""
    import h5py

    assert len(shape) <= MAX_NDIM
    group = file.create_group(name)
    row = max(1, dtype.itemsize * int(_product(shape)))
    rows = max(1, CHUNK_BYTES // row)
    most = (None, *shape) if 0 not in shape else (None,) * (1 + len(shape))  # chunks: sides >= 1
    data = group.create_dataset(
        "data", shape=(0, *shape), maxshape=most, dtype=storage_dtype(dtype),
        chunks=(rows, *(max(1, side) for side in shape)),
    )  # fmt: skip
    data.attrs["dtype"] = dtype.str
    ids = h5py.string_dtype("utf-8", ID_BYTES)
    group.create_dataset("_id", shape=(0,), maxshape=(None,), dtype=ids, chunks=(4096,))


def _product(shape: tuple[int, ...]) -> int:
    count = 1
    for side in shape:
        count *= side
    return count


class ArrayReader:
    """Arrays out of the file by pointer, for ``collector.read``; opened in SWMR read mode, so
    a running collector may go on writing."""

    def __init__(self, path: str | Path) -> None:
        try:
            import h5py
        except ImportError:
            raise ImportError(H5PY_MISSING) from None
        self.path = path
        self.file = h5py.File(path, "r", libver="latest", swmr=True, locking=False)
        self.id = file_id(self.file)
        self._open: dict[str, tuple[Any, Any, str]] = {}

    def load(self, value: bytes, rid: str | None = None) -> numpy.ndarray:
        """The array ``value`` points at (the row of ``rid``, when known); ConfigError when
        the pointer is not into this file, or its slot is missing or names another record."""
        import numpy

        ref = parse_pointer(value)
        row = f"row {rid!r}" if rid is not None else "a row"
        if ref.file != self.id:
            raise ConfigError(f"{row}: its array is in another HDF5 file than {self.path}")
        found = self._group(ref.group, ref.slot)
        if found is not None:
            data, ids, dtype = found
            if rid is not None and ids[ref.slot] not in (b"", rid.encode()):
                raise ConfigError(f"{row}: slot {ref.slot} of {ref.group} names another id")
            return as_sent(numpy.asarray(data[ref.slot]), dtype)
        raise ConfigError(f"{row}: {self.path} has no slot {ref.slot} in {ref.group}")

    def _group(self, name: str, slot: int) -> tuple[Any, Any, str] | None:
        """A group's ``data``, ``_id`` and dtype, opened once and refreshed (SWMR) only when
        ``slot`` is past what was seen; None when the file has no such group or slot."""
        if name not in self._open:
            group = self.file.get(name)
            if group is None:
                return None
            self._open[name] = (group["data"], group["_id"], group["data"].attrs["dtype"])
        data, ids, dtype = self._open[name]
        if slot >= min(len(data), len(ids)):
            data.refresh()
            ids.refresh()
            if slot >= min(len(data), len(ids)):
                return None
        return data, ids, dtype

    def close(self) -> None:
        self.file.close()
