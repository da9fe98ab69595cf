"""Batch entries (wire version 2): many records of one table and source in one stream entry.

Layout (stream field ``m``): a msgpack map
``{"v": 2, "t": table, "src": {"host", "pid", "job"}, "id": [str, ...], "ts": [float, ...],
"el": [float | nil, ...], "rss": [int | nil, ...], "d": [map, ...]}``; the lists are parallel,
record ``i`` is ``id[i]``, ``ts[i]``, ``el[i]`` (elapsed), ``rss[i]`` (maxrss) and ``d[i]``.
Each record is exactly the version-1 record with those fields and the entry's table and source,
so the collector stores it, or dead-letters it alone as that version-1 record.

Why: one XADD, one stream entry and one acknowledgement per batch instead of per record; Redis
keeps one entry's overhead for hundreds of records, and the collector reads them in one piece.
"""

from __future__ import annotations

import io
from typing import Any, NamedTuple

import msgpack

from workers.checks import DEFAULT_LIMITS, Limits, record_problem, size_problem, source_problem
from workers.columnar import records as records_of_columns
from workers.errors import DecodeError, EncodeError
from workers.record import Record, pack, pack_data, unpack, wire_data, wire_v1

BATCH_VERSION = 2
BATCH_PREFIX = b"\x88\xa1v\x02"  # how every entry encode_entries writes begins: {"v": 2, ...
MAX_ENTRY_RECORDS = 1000  # records per batch entry: bounds an entry's size and a read's memory
MAX_ENTRY_BYTES = 8 << 20  # data bytes per batch entry (a bigger record travels alone)
MAX_PAYLOAD_BYTES = (512 << 20) - (1 << 20)  # one stream entry: Redis takes 512 MiB at most
ENTRY_SLACK = 64  # bytes an entry spends per record besides its data (id, time, lists)
SIZE_SLACK = 256  # bytes a record's version-1 encoding may add to its share of an entry
_ARRAY = msgpack.Packer()
HEAD_READ = 4096  # bytes read at a time when only a batch entry's head is wanted


class Packed(NamedTuple):
    """One record waiting for its batch entry: its data already packed (so an unstorable value
    fails at emit time, in the caller), everything else as it will travel."""

    table: str
    host: str
    pid: int
    job: str | None
    id: str
    ts: float
    elapsed: float | None
    maxrss: int | None
    data: bytes


def packed(rec: Record) -> Packed:
    """``rec`` with its data packed; EncodeError for a value we cannot store or send."""
    data = check_size(pack_data(rec.data, rec.table), rec.table)
    return Packed(
        rec.table, rec.host, rec.pid, rec.job, rec.id, rec.ts, rec.elapsed, rec.maxrss, data
    )


def check_size(payload: bytes, table: str) -> bytes:
    """``payload`` itself, or EncodeError when no stream entry (and no spool frame) can hold
    it: the record fails in the caller, not later in a retry loop or the spool."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise EncodeError(
            f"record for table {table!r} of {len(payload)} bytes exceeds the {MAX_PAYLOAD_BYTES} "
            "bytes one Redis stream entry can hold"
        )
    return payload


def encode_entries(
    items: list[Packed], most: int = MAX_ENTRY_RECORDS, most_bytes: int = MAX_ENTRY_BYTES
) -> list[bytes]:
    """Batch entries for ``items``: one per table and source, at most ``most`` records and
    about ``most_bytes`` bytes each (a record larger than that alone), records in their order
    within each entry."""
    groups: dict[tuple[str, str, int, str | None], list[Packed]] = {}
    for item in items:
        groups.setdefault(item[:4], []).append(item)  # type: ignore[arg-type]
    entries = []
    for (table, host, pid, job), group in groups.items():
        for part in _parts(group, most, most_bytes):
            entries.append(_entry(table, host, pid, job, part))
    return entries


def _parts(group: list[Packed], most: int, most_bytes: int) -> list[list[Packed]]:
    """``group`` cut, in order, into runs of at most ``most`` records and ``most_bytes``."""
    parts: list[list[Packed]] = []
    run: list[Packed] = []
    size = 0
    for item in group:
        cost = len(item.data) + len(item.id) + ENTRY_SLACK
        if run and (len(run) >= most or size + cost > most_bytes):
            parts.append(run)
            run, size = [], 0
        run.append(item)
        size += cost
    if run:
        parts.append(run)
    return parts


def _entry(table: str, host: str, pid: int, job: str | None, items: list[Packed]) -> bytes:
    head = {
        "v": BATCH_VERSION,
        "t": table,
        "src": {"host": host, "pid": pid, "job": job},
        "id": [i.id for i in items],
        "ts": [i.ts for i in items],
        "el": [i.elapsed for i in items],
        "rss": [i.maxrss for i in items],
    }
    packed_head = msgpack.packb(head, use_bin_type=True)
    assert packed_head[0] == 0x87  # a fixmap of 7 pairs: "d" makes it 8
    datas = b"".join(i.data for i in items)
    return b"\x88" + packed_head[1:] + b"\xa1d" + _ARRAY.pack_array_header(len(items)) + datas


Refusal = tuple[bytes, str]  # a record's version-1 bytes, why it cannot be stored


def decode_entry(
    wire: dict[str, Any], raw: bytes, limits: Limits = DEFAULT_LIMITS
) -> tuple[list[Record], list[Refusal]]:
    """The records of an unpacked batch entry, and those refused (as version-1 bytes, with the
    reason). A malformed entry as a whole (parallel lists missing or of different lengths)
    raises DecodeError carrying ``raw``."""
    try:
        table, src = wire["t"], wire["src"]
        columns = [wire[k] for k in ("id", "ts", "el", "rss", "d")]
    except KeyError:
        missing = [k for k in ("t", "src", "id", "ts", "el", "rss", "d") if k not in wire]
        raise DecodeError(f"missing field(s): {', '.join(missing)}", raw) from None
    if not isinstance(src, dict) or not all(isinstance(c, list) for c in columns):
        raise DecodeError("batch entry: src must be a map and id, ts, el, rss, d lists", raw)
    if len({len(c) for c in columns}) != 1:
        raise DecodeError("batch entry: id, ts, el, rss and d differ in length", raw)
    host, pid, job = src.get("host") or "", src.get("pid") or 0, src.get("job")
    shared = source_problem(table, host, pid, job)
    measure = len(raw) + SIZE_SLACK > limits.max_record_bytes  # else no record can be too big
    if shared is None and not measure:
        n = len(columns[0])
        ids, stamps, elapsed, maxrss, datas = columns
        fast = records_of_columns(
            ids, [table] * n, stamps, [host] * n, [pid] * n, [job] * n, elapsed, maxrss, datas,
            limits,
        )  # fmt: skip
        if fast is not None:  # every record passed, checked column by column
            return fast, []
    records: list[Record] = []
    refused: list[Refusal] = []
    for rid, ts, elapsed, maxrss, data in zip(*columns, strict=True):
        wire_record = None
        reason = shared or record_problem(rid, ts, data, elapsed, maxrss, limits)
        if reason is None and measure:
            wire_record = _v1(rid, table, ts, host, pid, job, elapsed, maxrss, data)
            reason = size_problem(len(wire_record), limits)
        if reason is None:
            el = None if elapsed is None else float(elapsed)
            records.append(Record(rid, table, data, float(ts), host, pid, job, el, maxrss))
        else:
            wire_record = wire_record or _v1(rid, table, ts, host, pid, job, elapsed, maxrss, data)
            refused.append((wire_record, reason))
    return records, refused


def _v1(*fields: Any) -> bytes:
    """A batch entry's record as the version-1 bytes it would have had if emitted alone (a
    ``d`` that is no map, refused for that, travels as it came)."""
    rid, table, ts, host, pid, job, elapsed, maxrss, data = fields
    data = wire_data(data, table) if isinstance(data, dict) else data
    wire = wire_v1(rid, table, ts, host, pid, job, elapsed, maxrss, data)
    return pack(wire, table)


def decode_records(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> list[Record]:
    """Every record of one stream entry of either wire version (for tools and tests that read
    the queue); DecodeError when the entry or any of its records is refused."""
    wire = unpack(raw, limits)
    if not (isinstance(wire, dict) and wire.get("v") == BATCH_VERSION):
        return [Record.decode(raw, limits)]
    records, refused = decode_entry(wire, raw, limits)
    if refused:
        raise DecodeError(refused[0][1], raw)
    return records


def records_in(payload: bytes) -> int:
    """How many records one stream entry's bytes hold (1 unless a batch entry), read from the
    head of a batch entry without unpacking its records: for counting what a spool holds and
    sizing the collector's next read, never for checking it."""
    if not payload.startswith(BATCH_PREFIX):
        return 1
    try:
        head = msgpack.Unpacker(io.BytesIO(payload), read_size=HEAD_READ, timestamp=3)
        for _ in range(head.read_map_header()):
            if head.unpack() == "id":
                return int(head.read_array_header())
            head.skip()
    except Exception:  # not a batch entry after all: the collector will say why
        pass
    return 1
