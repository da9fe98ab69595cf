"""What makes a record storable, checked without trusting its sender: the identifier rule, the
limits a decoded record must respect, and the reason (a dead letter's) when one does not."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from workers.arrays import RESERVED

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
MAX_ID_LENGTH = 255
MAX_TS = 253_402_300_799.0  # 9999-12-31 23:59:59 UTC, the last second a datetime holds
MAX_DEPTH = 512  # deepest --max-depth: Python's json stops near 950 levels, msgpack near 1,020
META_KEYS = frozenset({"_error"})  # metadata a job may set itself, besides its data columns


def is_identifier(name: object) -> bool:
    """True when ``name`` may become a table or column name (the contract's identifier rule)."""
    return isinstance(name, str) and IDENTIFIER.fullmatch(name) is not None


@dataclass(frozen=True)
class Limits:
    """Bounds a decoded record must respect; anything beyond is a dead letter, never a crash."""

    max_record_bytes: int = 1 << 20
    max_depth: int = 32
    max_fields: int = 1024
    max_str_len: int = 1 << 20

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= MAX_DEPTH:  # deeper values no database column stores
            raise ValueError(f"max_depth must be 1 to {MAX_DEPTH}, not {self.max_depth}")


DEFAULT_LIMITS = Limits()


def size_problem(size: int, limits: Limits) -> str | None:
    """Why a record of ``size`` bytes (its version-1 encoding) is too large, or None."""
    if size > limits.max_record_bytes:
        return f"record of {size} bytes exceeds the limit of {limits.max_record_bytes}"
    return None


def source_problem(table: Any, host: Any, pid: Any, job: Any) -> str | None:
    """Why a record's table or source cannot be stored, or None (shared by a batch entry)."""
    if type(table) is not str or (table not in _GOOD_KEYS and not _good_key(table, meta=False)):
        return f"bad table name {table!r}: must match {IDENTIFIER.pattern}"
    # msgpack yields exact types, so class checks say what isinstance would, faster
    if host.__class__ is not str or pid.__class__ not in _INTS or job.__class__ not in _JOBS:
        return "src must hold host (string), pid (integer) and job (string or nil)"
    return None


def record_problem(
    rid: Any, ts: Any, data: Any, elapsed: Any, maxrss: Any, limits: Limits
) -> str | None:
    """Why one record (id, emit time, data, elapsed and peak memory) cannot be stored, or None."""
    if rid.__class__ is not str or not 0 < len(rid) <= MAX_ID_LENGTH:
        return f"id must be a non-empty string of at most {MAX_ID_LENGTH} characters"
    if ts.__class__ not in (int, float):  # msgpack gives exact types; bool is not a number
        return f"ts must be a number, not {type(ts).__name__}"
    if not 0 <= ts <= MAX_TS:  # also refuses NaN: no datetime can hold it
        return f"ts must be seconds since 1970 before the year 10000, not {ts!r}"
    if not isinstance(data, dict):
        return f"d must be a map, not {type(data).__name__}"
    if len(data) > limits.max_fields:
        return f"{len(data)} fields exceed the limit of {limits.max_fields}"
    nested = False
    for key, value in data.items():
        if key not in _GOOD_KEYS and not _good_key(key):
            return f"bad column name {key!r}: must match {IDENTIFIER.pattern}"
        if value.__class__ in CONTAINERS:
            nested = True
        elif value.__class__ is bytes and value.startswith(RESERVED):
            return f"column {key!r}: bytes beginning with {RESERVED!r} are reserved for arrays"
    if nested and depth(data) > limits.max_depth:
        return f"values nested deeper than {limits.max_depth} levels"
    if elapsed.__class__ not in _ELAPSED or maxrss.__class__ not in _MAXRSS:
        return "src elapsed must be a number and maxrss an integer, when present"
    return None


CONTAINERS = (dict, list)
_INTS, _JOBS = (int, bool), (str, type(None))  # what isinstance(pid, int) and str | None accept
_ELAPSED, _MAXRSS = (int, float, type(None)), (int, type(None))  # bools are not numbers here
_GOOD_KEYS: set[str] = set()  # names that passed the rule: decoding a batch re-checks none
_GOOD_KEYS_MAX = 10_000


def good_name(name: str, *, meta: bool = True) -> bool:
    """Whether ``name`` may be a column (or, ``meta`` False, a table): the identifier rule, or
    a metadata key a job may set; names that passed once are remembered."""
    return name in _GOOD_KEYS or _good_key(name, meta=meta)


def _good_key(name: object, *, meta: bool = True) -> bool:
    """The identifier rule (or a metadata key, when ``meta``); remembers names that pass."""
    if is_identifier(name):
        if len(_GOOD_KEYS) < _GOOD_KEYS_MAX:
            _GOOD_KEYS.add(name)  # type: ignore[arg-type]
        return True
    return meta and name in META_KEYS


def depth(value: Any) -> int:
    """Nesting depth of containers in ``value`` (a scalar is 0), computed without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest
