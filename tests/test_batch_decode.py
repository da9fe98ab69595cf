"""A batch decodes exactly as its records decoded one by one: the column-by-column checks of the
usual batch (workers.columnar) accept no record, and no value type, that ``Record.decode``
would not, and refuse with the same reasons (record by record, when the columns cannot say)."""

from __future__ import annotations

from typing import Any
from unittest import mock

import msgpack
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import collector.batch as batch_module
from collector.batch import Batch
from collector.entries import Entry, _flat_entry, flat_entries
from tests.test_codec_properties import SMALL, documents, identifiers, records
from workers import DecodeError, Limits, Record
from workers.checks import DEFAULT_LIMITS

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
shaped = st.fixed_dictionaries(  # a version-1 map whose fields hold anything
    {"v": st.just(1), "id": documents, "t": identifiers | documents, "ts": documents},
    optional={
        "d": documents | st.dictionaries(identifiers, documents),
        "src": documents | st.fixed_dictionaries({}, optional=dict.fromkeys(
            ("host", "pid", "job", "elapsed", "maxrss"), documents)),
    },
)  # fmt: skip
payloads = (
    records.map(Record.encode)
    | shaped.map(lambda doc: msgpack.packb(doc, use_bin_type=True, datetime=True))
    | documents.map(lambda doc: msgpack.packb(doc, use_bin_type=True, datetime=True))
)


def typed(value: Any) -> Any:
    """``value`` with every type spelled out (1, 1.0 and True are equal in Python; stored
    values must not be) and floats by their repr (NaN equals itself then)."""
    if isinstance(value, dict):
        return ("dict", tuple((typed(k), typed(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(map(typed, value)))
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def one_by_one(raws: list[bytes], limits: Limits) -> tuple[list[Any], list[Any]]:
    """What ``Record.decode`` makes of each payload alone: the records, the dead letters."""
    kept, dead = [], []
    for i, raw in enumerate(raws):
        try:
            kept.append(typed(Record.decode(raw, limits)))
        except DecodeError as exc:
            dead.append((b"%d-0" % i, raw, exc.reason))
    return kept, dead


def decoded(entries: list[Entry], limits: Limits, most: int, last_error: str | None) -> Batch:
    """The batch of ``entries`` as read, then decoded (in one process, or the writer's)."""
    batch = Batch.taken(entries, most, last_error)
    batch.decode(limits)
    return batch


def is_batch_entry(raw: bytes) -> bool:
    try:
        doc = msgpack.unpackb(raw, timestamp=3, strict_map_key=False)
    except Exception:
        return False
    return isinstance(doc, dict) and doc.get("v") == 2


@FAST
@given(st.lists(payloads, min_size=1, max_size=6), st.sampled_from([DEFAULT_LIMITS, SMALL]))
def test_a_batch_decodes_as_its_records_one_by_one(raws: list[bytes], limits: Limits) -> None:
    assume(not any(map(is_batch_entry, raws)))  # version 2 is decoded as a batch entry
    entries = [Entry(b"%d-0" % i, raw) for i, raw in enumerate(raws)]
    batch = decoded(entries, limits, 5, None)
    kept, dead = one_by_one(raws, limits)
    assert list(map(typed, batch.records)) == kept
    assert batch.dead == dead
    assert batch.ids == [e.id for e in entries]


@FAST
@given(st.lists(records, min_size=1, max_size=8))
def test_records_keep_their_exact_types_and_bytes(recs: list[Record]) -> None:
    """(Records as emitted: mostly the column path's; one refused sends all record by record.)"""
    raws = [rec.encode() for rec in recs]
    batch = decoded([Entry(b"%d-0" % i, r) for i, r in enumerate(raws)], DEFAULT_LIMITS, 5, None)
    kept, dead = one_by_one(raws, DEFAULT_LIMITS)
    assert list(map(typed, batch.records)) == kept and batch.dead == dead
    assert all(type(r.ts) is float for r in batch.records)
    refused = {entry_id for entry_id, _raw, _reason in dead}
    assert batch.raw == [raw for i, raw in enumerate(raws) if b"%d-0" % i not in refused]


names = st.sampled_from([b"m", b"x"])
field_lists = st.none() | st.lists(st.tuples(names, st.binary(max_size=4)), max_size=3).map(
    lambda pairs: [part for pair in pairs for part in pair]
)


@FAST
@given(st.lists(st.tuples(st.binary(min_size=1, max_size=8), field_lists), max_size=6))
def test_entries_of_a_reply_are_those_built_message_by_message(messages: list[Any]) -> None:
    """A reply's entries, built column by column when every message is ``[b"m", raw]``, are
    those the message-by-message path builds, with the same problems."""
    replies = [[mid, fields] for mid, fields in messages]
    assert flat_entries(replies) == [_flat_entry(mid, fields) for mid, fields in replies]


why_not = "stream entry has no field 'm'"
good = records.map(Record.encode)  # mostly a batch the column path takes
odd_entries = st.lists(
    st.tuples(
        st.sampled_from([b"1-0", b"2-0", b"3-0"]),  # repeated ids too
        st.one_of(*[good] * 6, payloads, st.none(), st.binary(max_size=20)),  # None:
        st.sampled_from([None] * 6 + [why_not]),  # deleted before it was read
        st.sampled_from([1] * 8 + [2, 7]),  # deliveries
    ),
    min_size=1,
    max_size=8,
)


@settings(FAST, max_examples=400)
@given(odd_entries, st.sampled_from([DEFAULT_LIMITS, SMALL]), st.sampled_from([1, 3]))
def test_the_column_path_and_the_entry_path_agree_on_any_entries(
    found: list[Any], limits: Limits, most: int
) -> None:
    """Deleted entries, entries without ``m``, over the delivery limit, repeated ids, poison:
    the batch is the one decoded entry by entry (ids, records, raw bytes, sources, dead)."""
    entries = [Entry(i, raw, None if raw is None else why, n) for i, raw, why, n in found]

    def parts(batch: Batch) -> tuple[Any, ...]:
        return batch.ids, list(map(typed, batch.records)), batch.raw, batch.sources, batch.dead

    fast = decoded(entries, limits, most, "E")
    with mock.patch.object(batch_module, "_all_v1", lambda _raws, _limits: None):
        assert parts(fast) == parts(decoded(entries, limits, most, "E"))


columns = st.lists(documents, min_size=2, max_size=2)  # each column of a two-record batch entry
batch_entries = st.fixed_dictionaries(  # a batch entry's map whose fields hold anything
    {"v": st.just(2), "t": identifiers | documents, "src": documents | st.fixed_dictionaries(
        {}, optional=dict.fromkeys(("host", "pid", "job"), documents)),
     "id": columns, "ts": columns, "el": columns, "rss": columns,
     "d": st.lists(documents | st.dictionaries(identifiers, documents), min_size=2, max_size=2)},
)  # fmt: skip


@FAST
@given(batch_entries, st.sampled_from([DEFAULT_LIMITS, SMALL]))
def test_any_batch_entry_decodes_to_records_and_dead_letters(
    wire: dict[str, Any], limits: Limits
) -> None:
    """Whatever a batch entry's fields hold, decoding it makes records and dead letters with a
    reason, never an exception (which crashed the writer process, or run_once, at every
    delivery): each of its records is stored or refused alone, or the entry is refused whole."""
    try:
        raw = msgpack.packb(wire, use_bin_type=True, datetime=True)
    except (TypeError, ValueError, OverflowError):
        assume(False)
    batch = Batch(ids=[b"1-0"], kept_ids=[b"1-0"], kept_raws=[raw])
    batch.decode(limits)
    assert len(batch.records) + len(batch.dead) in (1, 2)
    assert all(entry_id == b"1-0" and reason for entry_id, _raw, reason in batch.dead)
    if len(batch.records) + len(batch.dead) == 1 and batch.dead:
        assert batch.dead[0][1] == raw  # refused whole, as it came
