"""The wire record: encode/decode round trips, value conversion, strict validation."""

from __future__ import annotations

import datetime as dt

import msgpack
import numpy as np
import pytest

from workers.arrays import to_numpy
from workers.checks import IDENTIFIER, Limits
from workers.entry import BATCH_PREFIX, decode_entry, decode_records, encode_entries, packed
from workers.errors import DecodeError, EncodeError
from workers.record import Record, new_id


def make(data: dict, **kw) -> Record:
    return Record(id=kw.pop("id", "r1"), table=kw.pop("table", "results"), data=data, **kw)


def test_round_trip_keeps_every_supported_value() -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    data = {
        "n": None, "b": True, "i": -(2**63), "f": 1.5, "s": "héllo", "raw": b"\x00\xff",
        "when": when, "lst": [1, "a", None], "dct": {"x": [1.0]},
    }  # fmt: skip
    rec = make(data, ts=12.5, host="node1", pid=42, job="job-7")
    back = Record.decode(rec.encode())
    assert back == rec


def test_naive_datetime_is_taken_as_utc() -> None:
    back = Record.decode(make({"when": dt.datetime(2024, 1, 2, 3, 4, 5)}).encode())
    assert back.data["when"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_numpy_scalars_become_plain_values_and_arrays_stay_arrays() -> None:
    data = {"a": np.float64(0.25), "b": np.int32(7), "c": np.arange(3), "d": np.bool_(True)}
    back = Record.decode(make(data).encode()).data
    assert back == {"a": 0.25, "b": 7, "c": back["c"], "d": True}
    assert to_numpy(back["c"]).tolist() == [0, 1, 2] and back["c"].dtype == "<i8"
    assert type(back["b"]) is int and type(back["d"]) is bool


def test_tuples_become_lists() -> None:
    assert Record.decode(make({"t": (1, 2)}).encode()).data == {"t": [1, 2]}


def test_unsupported_value_raises_encode_error() -> None:
    with pytest.raises(EncodeError, match="object"):
        make({"x": object()}).encode()


def test_wire_layout_is_the_contract() -> None:
    wire = msgpack.unpackb(make({"x": 1}, ts=3.0, host="h", pid=9, job=None).encode())
    assert wire == {
        "v": 1, "id": "r1", "t": "results", "ts": 3.0,
        "src": {"host": "h", "pid": 9, "job": None}, "d": {"x": 1},
    }  # fmt: skip


def test_new_ids_are_unique_and_time_ordered() -> None:
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 32 for i in ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)


def wire(**fields) -> bytes:
    base = {"v": 1, "id": "a", "t": "results", "ts": 1.0, "src": {}, "d": {"x": 1}}
    base.update(fields)
    return msgpack.packb({k: v for k, v in base.items() if v is not ...})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xc1garbage", "not valid msgpack"),
        (msgpack.packb([1, 2]), "not a map"),
        (wire(v=2), "unsupported wire version 2"),
        (wire(id=...), "missing field(s): id"),
        (wire(d=...), "missing field(s): d"),
        (wire(id=""), "id must be a non-empty string"),
        (wire(t="x; DROP TABLE data"), "bad table name 'x; DROP TABLE data'"),
        (wire(t="_hidden"), "bad table name '_hidden'"),
        (wire(d={"a b": 1}), "bad column name 'a b'"),
        (wire(d={"_secret": 1}), "bad column name '_secret'"),
        (wire(d=[1]), "d must be a map"),
        (wire(ts="now"), "ts must be a number"),
        (wire(ts=float("nan")), "ts must be seconds since 1970"),
        (wire(ts=float("inf")), "ts must be seconds since 1970"),
        (wire(ts=1e300), "ts must be seconds since 1970"),
        (wire(ts=-1.0), "ts must be seconds since 1970"),
        (wire(src={"pid": "x"}), "src must hold"),
        (msgpack.packb({"v": 1, 1: 2}), "not valid msgpack"),
        (msgpack.packb(msgpack.ExtType(5, b"x")), "unsupported msgpack extension type 5"),
    ],
)
def test_bad_records_raise_decode_error_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        Record.decode(raw)
    assert reason in info.value.reason
    assert info.value.raw == raw


def test_error_key_is_allowed_metadata() -> None:
    assert Record.decode(wire(d={"x": 1, "_error": "ValueError: no"})).data["_error"] == (
        "ValueError: no"
    )


def test_limits_are_enforced() -> None:
    big = make({"s": "x" * 2000}).encode()
    with pytest.raises(DecodeError, match=r"exceeds the limit of 1000"):
        Record.decode(big, Limits(max_record_bytes=1000))
    with pytest.raises(DecodeError, match="nested deeper than 3"):
        Record.decode(make({"x": [[[1]]]}).encode(), Limits(max_depth=3))
    Record.decode(make({"x": [[1]]}).encode(), Limits(max_depth=3))
    with pytest.raises(DecodeError, match="3 fields exceed the limit of 2"):
        Record.decode(make({"a": 1, "b": 2, "c": 3}).encode(), Limits(max_fields=2))
    with pytest.raises(DecodeError, match="not valid msgpack"):
        Record.decode(make({"s": "x" * 50}).encode(), Limits(max_str_len=10))


def test_a_batch_entry_holds_each_record_exactly_as_emitted_alone() -> None:
    recs = [
        make({"x": i, "when": dt.datetime(2024, 1, 2, tzinfo=dt.UTC)}, id=f"r{i}", ts=1.0 + i,
             host="h", pid=9, job="j", elapsed=0.5 * i, maxrss=None if i else 7)
        for i in range(3)
    ]  # fmt: skip
    (raw,) = encode_entries([packed(r) for r in recs])
    assert raw.startswith(BATCH_PREFIX)
    wire = msgpack.unpackb(raw, timestamp=3)
    assert wire == {
        "v": 2, "t": "results", "src": {"host": "h", "pid": 9, "job": "j"},
        "id": ["r0", "r1", "r2"], "ts": [1.0, 2.0, 3.0], "el": [0.0, 0.5, 1.0],
        "rss": [7, None, None], "d": [r.data for r in recs],
    }  # fmt: skip
    assert decode_records(raw) == [Record.decode(r.encode()) for r in recs]


def test_batch_entries_split_by_table_and_source_and_size() -> None:
    recs = [make({"x": i}, id=f"r{i}", table="ab"[i % 2], job=None) for i in range(5)]
    recs.append(make({"x": 5}, id="r5", table="a", job="other"))
    entries = encode_entries([packed(r) for r in recs], most=2)
    assert [[r.id for r in decode_records(e)] for e in entries] == [
        ["r0", "r2"], ["r4"], ["r1", "r3"], ["r5"],
    ]  # fmt: skip


def test_a_refused_record_of_a_batch_entry_comes_back_as_its_version_1_bytes() -> None:
    good, bad = make({"x": 1}, id="ok"), make({"a b": 2}, id="bad")
    (raw,) = encode_entries([packed(good), packed(bad)])
    records, refused = decode_entry(msgpack.unpackb(raw, timestamp=3), raw)
    assert records == [good]
    assert refused == [(bad.encode(), "bad column name 'a b': must match " + IDENTIFIER.pattern)]
    with pytest.raises(DecodeError, match="bad column name 'a b'"):
        decode_records(raw)


def test_limits_apply_to_each_record_of_a_batch_entry() -> None:
    small = [make({"s": "y" * 300}, id=f"r{i}") for i in range(4)]
    big = make({"s": "y" * 1100}, id="big")
    (raw,) = encode_entries([packed(r) for r in [*small, big]])
    assert len(raw) > 1024
    records, refused = decode_entry(msgpack.unpackb(raw, timestamp=3), raw, Limits(1024))
    assert records == small
    assert refused == [
        (big.encode(), f"record of {len(big.encode())} bytes exceeds the limit of 1024")
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ts": [1.0]}, "differ in length"),
        ({"d": {"x": 1}}, "src must be a map and id, ts, el, rss, d lists"),
        ({"id": None}, "src must be a map"),
    ],
)
def test_a_malformed_batch_entry_is_refused_whole(change: dict, reason: str) -> None:
    (raw,) = encode_entries([packed(make({"x": i}, id=f"r{i}")) for i in range(2)])
    wire = {**msgpack.unpackb(raw), **change}
    with pytest.raises(DecodeError, match=reason):
        decode_entry(wire, raw)
    del wire["d"]
    with pytest.raises(DecodeError, match="missing field"):
        decode_entry(wire, raw)


def test_a_forked_child_and_a_seeded_job_never_repeat_ids() -> None:
    import os
    import random

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids after the fork
        os.write(write, new_id()[12:].encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    random.seed(42)
    first = new_id()[12:]
    random.seed(42)
    assert new_id()[12:] != first  # the random part ignores the job's own seed
    assert child != new_id()[12:]
