"""Datetimes as stored: naive UTC. A record's ``ts`` becomes ``_ts`` without a datetime per row
where the driver takes text."""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from typing import Any

_UTC = dt.UTC
Convert = Callable[[Any], Any]


def utc_naive(value: Any) -> Any:
    """An aware datetime as naive UTC (how datetimes are stored); anything else unchanged."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(_UTC).replace(tzinfo=None)
    return value


def ts_datetime(value: float) -> dt.datetime:
    """A record's ``ts`` (seconds since the epoch) as the naive UTC datetime stored in ``_ts``:
    exactly ``datetime.fromtimestamp`` (microseconds rounded half to even), whole seconds cached."""
    whole, micro = _split(value)
    return _second(whole).replace(microsecond=micro)


def ts_text(value: float) -> str:
    """``_ts`` as ISO text (SQLite's DATETIME storage, and what COPY parses into a timestamp),
    without building a datetime per row."""
    frac, whole = math.modf(value)
    micro = round(frac * 1e6)
    if not 0 <= micro < 1_000_000:  # rounded up to the next second, or before 1970
        whole, micro = _split(value)
    return f"{_second_text(whole)}.{micro:06d}"


def ts_converter(proc: Convert | None, text: bool) -> Convert:
    """How ``_ts`` is bound: as text for COPY (``text``), or when the text is what ``proc``
    makes of the datetime (SQLite); else as a datetime through ``proc``."""
    if text:
        return ts_text
    if proc is None:
        return ts_datetime
    samples = (1_700_000_000.0, 1_700_000_000.1234565, 1_700_000_001.9999996)
    if all(proc(ts_datetime(t)) == ts_text(t) for t in samples):
        return ts_text
    return compose(ts_datetime, proc)


def compose(first: Convert, then: Convert | None) -> Convert:
    """``first``, then ``then`` (when there is one)."""
    if then is None:
        return first
    return lambda value: then(first(value))


def _split(value: float) -> tuple[float, int]:
    frac, whole = math.modf(value)
    micro = round(frac * 1e6)
    if micro >= 1_000_000:
        return whole + 1, micro - 1_000_000
    if micro < 0:
        return whole - 1, micro + 1_000_000
    return whole, micro


@functools.lru_cache(maxsize=4096)
def _second(whole: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(whole, _UTC).replace(tzinfo=None)


@functools.lru_cache(maxsize=4096)
def _second_text(whole: float) -> str:
    return _second(whole).isoformat(sep=" ")
