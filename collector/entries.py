"""Stream entries as the collector holds them, and how Redis replies become them: the record
bytes of each entry, checked for our one field (column by column when every entry is ours)."""

from __future__ import annotations

from itertools import repeat
from typing import Any, NamedTuple

import msgpack

from workers.names import FIELD

_FIELD = FIELD.encode()

DeadEntry = tuple[bytes, bytes, str]  # entry id, record bytes, reason


class Entry(NamedTuple):
    """One stream entry: its id and record bytes; ``raw`` is None for an entry already deleted.
    (A named tuple: one is built per record read, and a tuple is built fastest.)

    ``problem`` says why an entry cannot be a record before decoding (no ``m`` field);
    ``deliveries`` is the consumer group's delivery count, this delivery included.
    """

    id: bytes
    raw: bytes | None
    problem: str | None = None
    deliveries: int = 1


def _entry(mid: bytes, fields: dict[bytes, bytes] | None, deliveries: int = 1) -> Entry:
    if not fields:
        return Entry(mid, None, deliveries=deliveries)
    raw = fields.get(_FIELD)
    if raw is None:
        problem = f"stream entry has no field {FIELD!r}"
        return Entry(mid, msgpack.packb(fields), problem, deliveries)
    return Entry(mid, raw, deliveries=deliveries)


def _flat_entry(mid: bytes, fields: list[bytes] | None) -> Entry:
    """An entry from a raw reply's flat field list (``[b"m", raw]`` for every record we send)."""
    if fields is not None and len(fields) == 2 and fields[0] == _FIELD:
        return Entry(mid, fields[1])
    return _entry(mid, dict(zip(fields[::2], fields[1::2], strict=True)) if fields else None)


def flat_entries(messages: list[Any]) -> list[Entry]:
    """The entries of a raw reply's messages; when every one is ``[b"m", raw]`` (all we send),
    built column by column in C, else message by message."""
    try:
        mids, fields = zip(*messages, strict=True)
        names, raws = zip(*fields, strict=True)  # a field list not of two: ValueError
    except (TypeError, ValueError):  # none, a deleted entry (nil fields), other fields
        return [_flat_entry(mid, f) for mid, f in messages]
    if set(names) != {_FIELD} or set(map(type, fields)) != {list}:  # lists: never a map's keys
        return [_flat_entry(mid, f) for mid, f in messages]
    return list(map(tuple.__new__, repeat(Entry), zip(mids, raws, repeat(None), repeat(1))))


def messages_of(reply: Any) -> list[Any]:
    """The one stream's messages in an XREADGROUP reply (a RESP2 list or a RESP3 map); none for
    an empty reply."""
    if not reply:
        return []
    return reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))


def entries_of(messages: list[Any], counts: dict[bytes, int] | None = None) -> list[Entry]:
    counts = counts or {}
    return [_entry(mid, fields, counts.get(mid, 1)) for mid, fields in messages]
