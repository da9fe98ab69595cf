"""The wire record: encode/decode round trips, value conversion, strict validation."""

from __future__ import annotations

import datetime as dt

import msgpack
import numpy as np
import pytest

from workers.errors import DecodeError, EncodeError
from workers.record import Limits, Record, new_id


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


def test_numpy_scalars_and_arrays_become_plain_values() -> None:
    data = {"a": np.float64(0.25), "b": np.int32(7), "c": np.arange(3), "d": np.bool_(True)}
    back = Record.decode(make(data).encode()).data
    assert back == {"a": 0.25, "b": 7, "c": [0, 1, 2], "d": True}
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
