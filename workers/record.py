"""The wire record and its codec: a small frozen dataclass, msgpack on the wire, strict decoding.

Wire format (stream field ``m``): a msgpack map
``{"v": 1, "id": str, "t": table, "ts": float, "src": {"host", "pid", "job"}, "d": {...}}``;
``src`` may also hold ``elapsed`` (seconds) and ``maxrss`` (bytes), optional in version 1.
Datetimes travel as msgpack Timestamps (ext -1) and numpy arrays, as column values, as
extension type 1 (layout in workers.arrays; inside a list or dict an array becomes a list);
no other extension type is accepted.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import random
import sys
import time
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any, NamedTuple

import msgpack

from workers.arrays import EXT_ARRAY, Array, to_ext
from workers.checks import DEFAULT_LIMITS, Limits, record_problem, size_problem, source_problem
from workers.errors import DecodeError, EncodeError

WIRE_VERSION = 1
_UTC = dt.UTC


def new_id() -> str:
    """A time-ordered id (48-bit milliseconds, then 80 random bits), 32 hex digits.

    Time order keeps inserts at the right edge of the ``_id`` index instead of random pages.
    The bits come from a private generator seeded from os.urandom, again in every forked child
    (a job's own ``random.seed`` cannot repeat them): a third of the cost of os.urandom per id.
    """
    return f"{time.time_ns() // 1_000_000:012x}{_bits(80):020x}"


_random = random.Random()  # seeded from os.urandom
_bits = _random.getrandbits
os.register_at_fork(after_in_child=_random.seed)  # a child must not repeat its parent's ids


def _default(value: Any) -> Any:
    """Convert what msgpack cannot pack natively: naive datetimes and datetime subclasses
    (msgpack packs only plain aware ones), dates, tuples/sets, numpy values."""
    if isinstance(value, dt.datetime):
        return None if value != value else _timestamp(value)  # pandas.NaT: a missing time
    if isinstance(value, dt.date):
        return _timestamp(dt.datetime(value.year, value.month, value.day))
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        if getattr(getattr(value, "dtype", None), "kind", "") == "M":  # datetime64, any unit
            value = value.astype("datetime64[us]")  # tolist: datetimes, not integer ns
            plain = value.tolist()
            return _timestamp(plain) if isinstance(plain, dt.datetime) else plain
        return value.tolist()  # ndarray and numpy scalars alike
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def _timestamp(value: dt.datetime) -> msgpack.Timestamp:
    """The instant ``value`` names (naive = UTC), built from its fields, so that any subclass
    (pandas.Timestamp, a user's own) arrives as the same instant, never relabelled as UTC."""
    plain = dt.datetime(
        value.year, value.month, value.day,
        value.hour, value.minute, value.second, value.microsecond, tzinfo=_UTC,
    )  # fmt: skip
    return msgpack.Timestamp.from_datetime(plain - (value.utcoffset() or dt.timedelta(0)))


class BadExtension(ValueError):
    """A msgpack extension value we refuse: its reason is the dead letter's, as it is."""


def _ext(code: int, data: bytes) -> Any:
    if code != EXT_ARRAY:
        raise BadExtension(f"unsupported msgpack extension type {code}")
    try:
        return Array.checked(data)
    except ValueError as exc:
        raise BadExtension(str(exc)) from None


def wire_data(data: dict[str, Any], table: object) -> dict[str, Any]:
    """``data`` with each numpy array value (and each Array decoded before) as its extension
    value; EncodeError for an array that cannot travel exactly. Others pass as they are."""
    numpy = sys.modules.get("numpy")  # a job that sends no array never imports numpy
    types = set(map(type, data.values()))
    if Array not in types and (
        numpy is None or not any(issubclass(t, numpy.ndarray) for t in types)
    ):
        return data
    wire = dict(data)
    for key, value in data.items():
        if isinstance(value, Array):
            wire[key] = msgpack.ExtType(EXT_ARRAY, bytes(value))
        elif numpy is not None and isinstance(value, numpy.ndarray):
            try:
                wire[key] = to_ext(value)
            except ValueError as exc:
                raise EncodeError(f"record for table {table!r}: column {key!r}: {exc}") from None
    return wire


class _Fields(NamedTuple):
    id: str
    table: str
    data: dict[str, Any]
    ts: float
    host: str
    pid: int
    job: str | None
    elapsed: float | None
    maxrss: int | None


class Record(_Fields):
    """One result on its way to a table: ``data`` maps column names to values; ``ts`` defaults
    to now.

    Immutable, and a named tuple rather than a frozen dataclass: the collector builds thousands
    per batch, and ``from_columns`` builds them in C without a Python call per record.
    """

    __slots__ = ()

    def __new__(
        cls, id: str, table: str, data: dict[str, Any], ts: float | None = None,
        host: str = "", pid: int = 0, job: str | None = None,
        elapsed: float | None = None, maxrss: int | None = None,
    ) -> Record:  # fmt: skip
        stamp = time.time() if ts is None else ts
        return tuple.__new__(cls, (id, table, data, stamp, host, pid, job, elapsed, maxrss))

    @classmethod
    def from_columns(cls, *columns: Iterable[Any]) -> list[Record]:
        """Records from parallel columns in field order, values already checked."""
        return list(map(tuple.__new__, repeat(cls), zip(*columns, strict=True)))

    def encode(self) -> bytes:
        """The msgpack bytes of this record; raises EncodeError for a value we cannot store."""
        wire = wire_v1(
            self.id, self.table, self.ts, self.host, self.pid, self.job,
            self.elapsed, self.maxrss, wire_data(self.data, self.table),
        )  # fmt: skip
        return pack(wire, self.table)

    @classmethod
    def decode(cls, raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Record:
        """Parse and validate the bytes of a one-record entry (version 1); any problem raises
        DecodeError carrying ``raw``."""
        reason = size_problem(len(raw), limits)
        if reason is not None:
            raise DecodeError(reason, raw)
        return cls.from_wire(unpack(raw, limits), raw, limits)

    @classmethod
    def from_wire(cls, wire: Any, raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Record:
        """The record an unpacked version-1 map holds, checked; DecodeError carrying ``raw``."""
        if not isinstance(wire, dict):
            raise DecodeError(f"record is a msgpack {type(wire).__name__}, not a map", raw)
        if wire.get("v") != WIRE_VERSION:
            raise DecodeError(f"unsupported wire version {wire.get('v')!r}", raw)
        try:
            rid, table, ts, data = wire["id"], wire["t"], wire["ts"], wire["d"]
        except KeyError:
            missing = [k for k in ("id", "t", "ts", "d") if k not in wire]
            raise DecodeError(f"missing field(s): {', '.join(missing)}", raw) from None
        src = wire.get("src") or {}
        if not isinstance(src, dict):
            raise DecodeError(f"src must be a map, not {type(src).__name__}", raw)
        host, pid, job = src.get("host") or "", src.get("pid") or 0, src.get("job")
        elapsed, maxrss = src.get("elapsed"), src.get("maxrss")
        reason = source_problem(table, host, pid, job) or record_problem(
            rid, ts, data, elapsed, maxrss, limits
        )
        if reason is not None:
            raise DecodeError(reason, raw)
        elapsed = None if elapsed is None else float(elapsed)
        return cls(rid, table, data, float(ts), host, pid, job, elapsed, maxrss)


def wire_v1(
    rid: Any, table: Any, ts: Any, host: Any, pid: Any, job: Any,
    elapsed: Any, maxrss: Any, data: Any,
) -> dict[str, Any]:  # fmt: skip
    """The version-1 map of one record (``elapsed`` and ``maxrss`` only when present)."""
    src: dict[str, Any] = {"host": host, "pid": pid, "job": job}
    if elapsed is not None:
        src["elapsed"] = elapsed
    if maxrss is not None:
        src["maxrss"] = maxrss
    return {"v": WIRE_VERSION, "id": rid, "t": table, "ts": ts, "src": src, "d": data}


def pack(value: Any, table: object) -> bytes:
    """msgpack bytes of ``value`` with our conversions; EncodeError for a value we cannot store."""
    try:
        return msgpack.packb(value, default=_default, datetime=True, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"record for table {table!r}: {exc}") from exc


def pack_data(data: dict[str, Any], table: object) -> bytes:
    """msgpack bytes of one record's data map, arrays as their extension values."""
    return pack(wire_data(data, table), table)


def unpack(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The msgpack value of one stream entry, under ``limits``; DecodeError carrying ``raw``.
    Sizes are the caller's to check: a batch entry may be larger than one record may."""
    try:
        return unpacker(limits, len(raw))(raw)
    except BadExtension as exc:
        raise DecodeError(str(exc), raw) from None
    except Exception as exc:  # msgpack raises many unrelated types for bad input
        raise DecodeError(f"not valid msgpack: {type(exc).__name__}: {exc}", raw) from None


@functools.lru_cache(maxsize=64)
def _unpacker(limits: Limits, most: int) -> Callable[[bytes], Any]:
    return functools.partial(
        msgpack.unpackb,
        raw=False,
        timestamp=3,
        strict_map_key=True,
        ext_hook=_ext,
        max_str_len=limits.max_str_len,
        max_bin_len=limits.max_str_len,
        max_array_len=most,
        max_map_len=most,
    )


def unpacker(limits: Limits, size: int = 0) -> Callable[[bytes], Any]:
    """``msgpack.unpackb`` bound to ``limits`` for bytes of at most ``size`` (any exception
    it raises means bytes that are not valid msgpack within the limits)."""
    return _unpacker(limits, max(limits.max_record_bytes, size))
