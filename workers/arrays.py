"""Numpy arrays on the wire and in the table: dtype, shape and raw bytes, kept exactly.

An array travels as msgpack extension type ``EXT_ARRAY`` (1); its payload, which is also what
a table stores in the array's (binary) column, is::

    b"\\x93RCARR"              6 bytes, the marker that tells an array from other bytes
    version                    1 byte, 1
    ndim                       1 byte, 0 to 32
    shape                      ndim unsigned 64-bit little-endian integers
    n                          1 byte, the length of the dtype string
    dtype                      n ASCII bytes, numpy's ``dtype.str`` ("<f8", "|b1", "<M8[ns]")
    data                       the elements in C order: itemsize x product(shape) bytes

Memory order is not a value: Fortran-ordered arrays and strided views travel in C order. Kinds
kept: bool, int8-64, uint8-64, float16/32/64, complex64/128, datetime64 and timedelta64 (any
unit, either byte order); anything else (object, strings, structured, long double, masked) is
refused at emit with the reason. Decoding needs no numpy; ``to_numpy`` does.
"""

from __future__ import annotations

import re
import struct
import sys
from typing import TYPE_CHECKING, Any

import msgpack

if TYPE_CHECKING:
    import numpy

EXT_ARRAY = 1
MARKER = b"\x93RCARR"
RESERVED = b"\x93RC"  # what array payloads (and the collector's pointers to arrays) begin with
VERSION = 1
MAX_NDIM = 32
_DTYPE = re.compile(
    r"(?:\|b1|[<>|]i1|[<>|]u1|[<>]i[248]|[<>]u[248]|[<>]f[248]|[<>]c(?:8|16)"
    r"|[<>][Mm]8(?:\[(?:\d{1,9})?(?:Y|M|W|D|h|m|s|ms|us|ns|ps|fs|as)\])?)"
)
_ITEMSIZE = re.compile(r"\d+")


class Array(bytes):
    """One array as it travels and is stored: the extension payload, checked. A bytes
    subclass, so database drivers store it as the binary value it is."""

    @classmethod
    def checked(cls, payload: bytes) -> Array:
        """``payload`` as an Array; ValueError saying why it is not one."""
        problem = payload_problem(payload)
        if problem is not None:
            raise ValueError(f"array payload: {problem}")
        return cls(payload)

    @property
    def dtype(self) -> str:
        return header(self)[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return header(self)[1]

    def __repr__(self) -> str:
        dtype, shape, _ = header(self)
        return f"Array(dtype={dtype!r}, shape={shape})"


def header(payload: bytes) -> tuple[str, tuple[int, ...], int]:
    """The dtype string, the shape and the offset of the data of a checked payload."""
    ndim = payload[7]
    end = 8 + 8 * ndim
    shape = struct.unpack_from(f"<{ndim}Q", payload, 8)
    size = payload[end]
    return payload[end + 1 : end + 1 + size].decode("ascii"), shape, end + 1 + size


def payload_problem(payload: bytes) -> str | None:
    """Why ``payload`` is not an array payload of this layout, or None."""
    if not payload.startswith(MARKER) or len(payload) < 9:
        return "does not start with the array marker"
    if payload[6] != VERSION:
        return f"layout version {payload[6]} is not {VERSION}"
    ndim = payload[7]
    if ndim > MAX_NDIM:
        return f"{ndim} dimensions exceed {MAX_NDIM}"
    end = 8 + 8 * ndim
    if len(payload) < end + 1 or len(payload) < end + 1 + payload[end]:
        return "truncated header"
    try:
        dtype, shape, start = header(payload)
    except UnicodeDecodeError:
        return "dtype is not ASCII"
    if _DTYPE.fullmatch(dtype) is None:
        return f"dtype {dtype!r} is not one kept exactly"
    count, nonzero = 1, 1
    for side in shape:
        count *= side
        nonzero *= side or 1
    itemsize = int(_ITEMSIZE.search(dtype).group())  # type: ignore[union-attr]
    if nonzero * itemsize >= 1 << 63:  # numpy's bound, zero sides or not
        return f"shape {shape} of {dtype} is larger than any array can be"
    expected = count * itemsize
    if len(payload) - start != expected:
        return f"{len(payload) - start} data bytes, shape {shape} of {dtype} needs {expected}"
    return None


def is_array_payload(value: object) -> bool:
    """Whether a stored value is an array payload (plain bytes never start with ``RESERVED``:
    the collector refuses such bytes)."""
    return isinstance(value, bytes) and value.startswith(MARKER)


def dtype_problem(array: numpy.ndarray) -> str | None:
    """Why ``array`` cannot travel exactly, or None."""
    numpy = sys.modules["numpy"]
    if isinstance(array, numpy.ma.MaskedArray):
        return "a masked array: send its data and its mask as two arrays"
    dtype = array.dtype
    if dtype.kind == "O":
        return "an object array: its elements are Python objects, not a fixed binary type"
    if dtype.fields is not None or dtype.subdtype is not None:
        return f"structured dtype {dtype}: send each field as an array of its own"
    if dtype.kind in "SUV":
        return f"dtype {dtype}: string and void arrays are not kept; send a list of str"
    if _DTYPE.fullmatch(dtype.str) is None:
        return f"dtype {dtype} ({dtype.str}): not a type kept exactly on every machine"
    if array.ndim > MAX_NDIM:
        return f"{array.ndim} dimensions exceed {MAX_NDIM}"
    return None


def to_ext(array: numpy.ndarray) -> msgpack.ExtType:
    """The extension value of ``array``; ValueError saying why it cannot travel exactly."""
    problem = dtype_problem(array)
    if problem is not None:
        raise ValueError(problem)
    code = array.dtype.str.encode("ascii")
    head = MARKER + bytes((VERSION, array.ndim)) + struct.pack(f"<{array.ndim}Q", *array.shape)
    return msgpack.ExtType(EXT_ARRAY, b"".join((head, bytes((len(code),)), code, array.tobytes())))


def to_numpy(payload: bytes) -> numpy.ndarray:
    """The numpy array a (checked) payload holds: its own writable copy, C order."""
    import numpy

    dtype, shape, start = header(payload)
    flat = numpy.frombuffer(payload, dtype=numpy.dtype(dtype), offset=start)
    return flat.reshape(shape).copy()


def is_ndarray(value: Any) -> bool:
    """Whether ``value`` is a numpy array (without importing numpy: a job that sends none
    never loads it)."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)
