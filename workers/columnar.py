"""Checking many records at once: the rules of workers.record, applied column by column.

A batch of a few thousand records usually shares one table, one source and one set of keys.
Checking each record in Python costs more than unpacking it; checking each column with
``map``, ``set`` and ``min``/``max`` loops in C. These checks only ever say "all of them pass";
when they cannot say so, the caller checks record by record (workers.record) for the exact
reasons, so both paths refuse the same records with the same reasons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from workers.arrays import RESERVED
from workers.checks import CONTAINERS, MAX_ID_LENGTH, MAX_TS, Limits, depth, good_name
from workers.record import WIRE_VERSION, Record

_V1_FIELDS = itemgetter("v", "id", "t", "ts", "src", "d")
_V1_KEYS = frozenset(("v", "id", "t", "ts", "src", "d"))
_GOOD_SHAPES: set[tuple[str, ...]] = set()  # key tuples whose every key passed the rule
_GOOD_SHAPES_MAX = 4096
_NONE = type(None)


def v1_records(wires: list[Any], limits: Limits) -> list[Record] | None:
    """The records of unpacked version-1 maps when every one passes every check, else None."""
    if not wires or set(map(type, wires)) != {dict} or set(map(len, wires)) != {len(_V1_KEYS)}:
        return None
    try:  # six keys, all of them the version-1 ones: exactly those
        versions, ids, tables, stamps, srcs, datas = zip(*map(_V1_FIELDS, wires), strict=True)
    except KeyError:
        return None
    if set(versions) != {WIRE_VERSION} or set(map(type, tables)) != {str}:
        return None
    if not all(good_name(t, meta=False) for t in set(tables)):
        return None
    if set(map(type, srcs)) != {dict}:
        return None
    hosts = list(map(dict.get, srcs, repeat("host")))
    pids = list(map(dict.get, srcs, repeat("pid")))
    jobs = list(map(dict.get, srcs, repeat("job")))
    elapsed = list(map(dict.get, srcs, repeat("elapsed")))
    maxrss = list(map(dict.get, srcs, repeat("maxrss")))
    if not sources_pass(hosts, pids, jobs):
        return None
    return records(ids, tables, stamps, hosts, pids, jobs, elapsed, maxrss, datas, limits)


def sources_pass(hosts: Sequence[Any], pids: Sequence[Any], jobs: Sequence[Any]) -> bool:
    """Whether every host is a string, every pid an int and every job a string or nil."""
    return (
        set(map(type, hosts)) == {str}
        and set(map(type, pids)) == {int}
        and set(map(type, jobs)) <= {str, _NONE}
    )


def records(
    ids: Sequence[Any], tables: Sequence[str], stamps: Sequence[Any], hosts: Sequence[Any],
    pids: Sequence[Any], jobs: Sequence[Any], elapsed: Sequence[Any],
    maxrss: Sequence[Any], datas: Sequence[Any], limits: Limits,
) -> list[Record] | None:  # fmt: skip
    """Records from parallel columns (tables and sources already checked) when every id, emit
    time, elapsed, maxrss and data map passes, else None."""
    if set(map(type, ids)) != {str} or min(map(len, ids)) < 1:
        return None
    if max(map(len, ids)) > MAX_ID_LENGTH or not set(map(type, stamps)) <= {float, int}:
        return None
    if any(map(math.isnan, stamps)) or min(stamps) < 0 or max(stamps) > MAX_TS:
        return None
    el_types, rss_types = set(map(type, elapsed)), set(map(type, maxrss))
    if not el_types <= {float, int, _NONE} or not rss_types <= {int, _NONE}:
        return None
    if not data_pass(datas, limits):
        return None
    if int in el_types:
        elapsed = [None if e is None else float(e) for e in elapsed]
    if int in set(map(type, stamps)):
        stamps = list(map(float, stamps))
    columns = (ids, tables, datas, stamps, hosts, pids, jobs, elapsed, maxrss)
    return Record.from_columns(*columns)


def data_pass(datas: Sequence[Any], limits: Limits) -> bool:
    """Whether every data map has good keys, few enough fields, and shallow enough values."""
    if set(map(type, datas)) != {dict}:
        return False
    for shape in set(map(tuple, datas)):
        if len(shape) > limits.max_fields:
            return False
        if shape not in _GOOD_SHAPES:
            if not all(good_name(key) for key in shape):
                return False
            if len(_GOOD_SHAPES) < _GOOD_SHAPES_MAX:
                _GOOD_SHAPES.add(shape)
    values = set(map(type, chain.from_iterable(map(dict.values, datas))))
    if bytes in values and any(_marked(data) for data in datas):
        return False  # plain bytes that would read back as an array: refused record by record
    if values.isdisjoint(CONTAINERS):
        return True
    return all(depth(data) <= limits.max_depth for data in datas)


def _marked(data: dict[str, Any]) -> bool:
    """Whether a data map holds plain bytes that begin with the array marker."""
    return any(v.__class__ is bytes and v.startswith(RESERVED) for v in data.values())
