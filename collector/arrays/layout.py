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

A row's array column holds a pointer, ``b"\\x93RCREF\\x01"`` + the group path in UTF-8 + a zero
byte + the slot as an unsigned 64-bit little-endian integer.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.arrays import MAX_NDIM

if TYPE_CHECKING:
    import h5py
    import numpy

POINTER = b"\x93RCREF\x01"
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


def pointer(group: str, slot: int) -> bytes:
    return b"".join((POINTER, group.encode(), b"\x00", struct.pack("<Q", slot)))


def is_pointer(value: object) -> bool:
    return isinstance(value, bytes) and value.startswith(POINTER)


def parse_pointer(value: bytes) -> tuple[str, int]:
    """The group path and the slot a pointer names."""
    return value[len(POINTER) : -9].decode(), struct.unpack("<Q", value[-8:])[0]


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
        self.file = h5py.File(path, "r", libver="latest", swmr=True, locking=False)

    def load(self, value: bytes) -> numpy.ndarray:
        import numpy

        group, slot = parse_pointer(value)
        data = self.file[group]["data"]
        data.refresh()
        return as_sent(numpy.asarray(data[slot]), data.attrs["dtype"])

    def close(self) -> None:
        self.file.close()
