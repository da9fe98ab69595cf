"""Property tests of the codec: no input crashes the decoder, every valid record round-trips."""

from __future__ import annotations

import datetime as dt

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers import DecodeError, Limits, Record
from workers.checks import DEFAULT_LIMITS, IDENTIFIER

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
identifiers = st.from_regex(IDENTIFIER, fullmatch=True)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.binary(max_size=50)
    | st.datetimes(timezones=st.just(dt.UTC))
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
records = st.builds(
    Record,
    id=st.text(min_size=1, max_size=255),
    table=identifiers,
    data=st.dictionaries(identifiers | st.just("_error"), values, max_size=8),
    ts=st.floats(min_value=0, max_value=4e9),
    host=st.text(max_size=30),
    pid=st.integers(min_value=0, max_value=2**31),
    job=st.none() | st.text(max_size=30),
    elapsed=st.none() | st.floats(min_value=0, max_value=1e9),
    maxrss=st.none() | st.integers(min_value=0, max_value=2**62),
)
map_keys = st.text(max_size=4) | st.integers(-(2**63), 2**64 - 1) | st.booleans()
# any msgpack document, including maps with non-string keys and extension types
documents = st.recursive(
    scalars | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(map_keys, inner, max_size=4),
    max_leaves=20,
)
SMALL = Limits(max_record_bytes=4096, max_depth=4, max_fields=6, max_str_len=40)


def decode_or_reason(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Record | str:
    """Decode ``raw``; only a Record or a DecodeError (with ``raw`` attached) may come out."""
    try:
        return Record.decode(raw, limits)
    except DecodeError as exc:
        assert exc.raw == raw
        assert exc.reason
        return exc.reason


@FAST
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash_the_decoder(raw: bytes) -> None:
    decode_or_reason(raw)
    decode_or_reason(raw, SMALL)


@FAST
@given(documents)
def test_arbitrary_msgpack_documents_never_crash_the_decoder(doc: object) -> None:
    raw = msgpack.packb(doc, use_bin_type=True, datetime=True)
    decode_or_reason(raw)
    decode_or_reason(raw, SMALL)


@FAST
@given(records, st.data())
def test_damaged_records_never_crash_the_decoder(rec: Record, data: st.DataObject) -> None:
    raw = bytearray(rec.encode())
    cut = data.draw(st.integers(0, len(raw)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(1, 255))))
    for pos, mask in flips:
        raw[pos] ^= mask
    decode_or_reason(bytes(raw))
    decode_or_reason(bytes(raw[:cut]))


@FAST
@given(records)
def test_every_valid_record_round_trips(rec: Record) -> None:
    assert Record.decode(rec.encode()) == rec


@FAST
@given(records)
def test_a_record_over_a_limit_is_refused_not_truncated(rec: Record) -> None:
    result = decode_or_reason(rec.encode(), SMALL)
    assert result == rec or isinstance(result, str)


@FAST
@given(
    st.fixed_dictionaries(
        {"v": st.just(1), "id": documents, "t": identifiers | documents, "ts": documents},
        optional={"d": documents | st.dictionaries(identifiers, documents), "src": documents},
    )
)
def test_record_shaped_maps_with_any_field_values_never_crash_the_decoder(doc: dict) -> None:
    decode_or_reason(msgpack.packb(doc, use_bin_type=True, datetime=True))
