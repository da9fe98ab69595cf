"""Batch entries are bounded in bytes as well as records, every frame the spool writes is one it
reads back, and a frame that really is damaged is kept aside with its bytes, never deleted."""

from __future__ import annotations

import logging
from pathlib import Path

import fakeredis
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers.buffer import SendBuffer
from workers.checks import Limits
from workers.emitter import Emitter
from workers.entry import (
    MAX_ENTRY_BYTES,
    MAX_PAYLOAD_BYTES,
    Packed,
    check_size,
    decode_records,
    encode_entries,
)
from workers.errors import EncodeError
from workers.spool import ASIDE, MAX_BODY, Spool, frame, parse


def item(n: int, size: int, table: str = "t") -> Packed:
    data = msgpack.packb({"b": b"x" * size})
    return Packed(table, "h", 1, None, f"id{n:05d}", 1.0, None, None, data)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 5000), max_size=40),
    st.integers(1, 7),
    st.integers(64, 20_000),
)
def test_entries_are_bounded_in_records_and_bytes_and_keep_every_record(
    sizes: list[int], most: int, most_bytes: int
) -> None:
    items = [item(i, size) for i, size in enumerate(sizes)]
    entries = encode_entries(items, most=most, most_bytes=most_bytes)
    ids = []
    for entry in entries:
        records = decode_records(entry)
        assert len(records) <= most
        data = sum(len(i.data) + len(i.id) + 64 for i in items if i.id in {r.id for r in records})
        assert len(records) == 1 or data <= most_bytes
        ids += [r.id for r in records]
    assert ids == [i.id for i in items]


def test_a_payload_no_stream_entry_holds_fails_at_emit_and_every_other_fits_a_frame() -> None:
    with pytest.raises(EncodeError, match=r"exceeds the \d+ bytes one Redis stream entry can hold"):
        check_size(b"x" * (MAX_PAYLOAD_BYTES + 1), "t")
    assert MAX_BODY >= MAX_PAYLOAD_BYTES + 1024  # the largest payload and a long queue name
    assert MAX_ENTRY_BYTES < MAX_PAYLOAD_BYTES


def test_a_frame_larger_than_the_old_256_mib_limit_reads_back() -> None:
    payload = b"p" * (257 << 20)
    data = frame("q", payload)
    entries, skipped = parse(data)
    assert skipped == 0 and entries == [("q", payload)]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.integers(0, 200_000), min_size=1, max_size=12),
    st.one_of(st.none(), st.integers(0, 10**9)),
    st.integers(1, 255),
)
def test_random_sizes_round_trip_and_damage_is_kept_aside(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], where: int | None, flip: int
) -> None:
    directory = tmp_path_factory.mktemp("spool")
    spool = Spool(directory)
    payloads = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
    for payload in payloads:
        spool.append("q", [payload])
    path = spool.path
    original = path.read_bytes()
    if where is not None:  # damage one byte somewhere
        at = where % len(original)
        original = original[:at] + bytes([original[at] ^ flip]) + original[at + 1 :]
        path.write_bytes(original)
    sent: list[bytes] = []
    result = spool.flush(lambda _queue, group: sent.extend(group))
    assert not path.exists()
    if result.skipped:
        [aside] = result.aside
        assert aside.name.startswith(path.name + ASIDE)
        assert aside.read_bytes() == original  # every byte kept
        assert set(sent) <= set(payloads)
    else:
        assert result.aside == [] and sent == payloads
        assert list(directory.iterdir()) == []
    assert result.sent == len(sent)


def test_damage_is_one_warning_naming_the_file_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    spool.append("q", [b"a", b"b", b"c"])
    data = bytearray(spool.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    spool.path.write_bytes(bytes(data))
    sent: list[bytes] = []
    with caplog.at_level(logging.WARNING, logger="workers.spool"):
        result = spool.flush(lambda _queue, group: sent.extend(group))
    [aside] = result.aside
    assert (sent, result.skipped) == ([b"a", b"c"], 1)
    assert aside.read_bytes() == bytes(data)
    [warning] = caplog.messages
    assert str(aside) in warning and "damaged" in warning
    assert Spool(tmp_path).files() == []  # kept aside, never read again as a spool file


def test_a_buffer_is_sent_once_it_holds_its_bytes_not_only_its_count() -> None:
    sent: list[list[bytes]] = []
    buffer = SendBuffer(sent.append, size=1000, interval=60, most_bytes=100, weigh=len)
    try:
        buffer.add([b"x" * 60])
        assert sent == []
        buffer.add([b"y" * 50])
        assert sent == [[b"x" * 60, b"y" * 50]]
        buffer.add([b"z"])
        assert len(sent) == 1  # the count starts again after a send
    finally:
        buffer.close()
    assert sent[-1] == [b"z"]


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.integers(0, 3 << 19), min_size=1, max_size=8),
    st.lists(st.integers(0, 2000), max_size=30),
)
def test_random_record_sizes_spooled_while_redis_is_down_all_arrive_after(
    tmp_path_factory: pytest.TempPathFactory, big: list[int], small: list[int]
) -> None:
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    spool_dir = tmp_path_factory.mktemp("spool")
    emitter = Emitter(queue="q", client=client, spool_dir=spool_dir, emit_timeout=0)
    server.connected = False
    sizes = big + small
    ids = emitter.emit_many(({"i": i, "s": "x" * n} for i, n in enumerate(sizes)), table="t")
    ids += [emitter.emit({"one": "y" * n}, table="t") for n in big[:2]]
    [path] = Spool(spool_dir).files()
    assert parse(path.read_bytes())[1] == 0  # every frame written reads back
    server.connected = True
    emitter.close()  # re-sends the spool
    limits = Limits(max_record_bytes=64 << 20, max_str_len=64 << 20)  # not the collector's
    arrived = [r.id for _, f in client.xrange("q") for r in decode_records(f[b"m"], limits)]
    assert arrived == ids
    assert list(spool_dir.iterdir()) == []


def _spooled(directory: Path, sizes: list[int]) -> tuple[Spool, list[bytes], list[int]]:
    """A spool holding one frame per size, and where each frame ends in its file."""
    spool = Spool(directory)
    payloads = [bytes([65 + n % 26]) * size for n, size in enumerate(sizes)]
    ends = []
    for payload in payloads:
        spool.append("q", [payload])
        ends.append(spool.path.stat().st_size)
    return spool, payloads, ends


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(0, 3000), min_size=1, max_size=6), st.data())
def test_a_spool_truncated_at_any_offset_keeps_every_whole_frame_and_every_byte(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], data: st.DataObject
) -> None:
    directory = tmp_path_factory.mktemp("spool")
    spool, payloads, ends = _spooled(directory, sizes)
    at = data.draw(st.integers(0, ends[-1]), label="truncated at")
    original = spool.path.read_bytes()[:at]
    spool.path.write_bytes(original)
    sent: list[bytes] = []
    result = spool.flush(lambda _queue, group: sent.extend(group))
    whole = sum(1 for end in ends if end <= at)
    assert sent == payloads[:whole]  # every frame written before the cut, in order
    assert not spool.path.exists()
    torn = at not in (0, *ends)
    assert (result.skipped > 0) == torn
    if torn:
        [aside] = result.aside
        assert aside.read_bytes() == original  # the torn tail is kept, never deleted
    else:
        assert result.aside == [] and list(directory.iterdir()) == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(0, 3000), min_size=1, max_size=6), st.data())
def test_one_byte_damaged_anywhere_loses_only_the_frame_it_is_in(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], data: st.DataObject
) -> None:
    directory = tmp_path_factory.mktemp("spool")
    spool, payloads, ends = _spooled(directory, sizes)
    at = data.draw(st.integers(0, ends[-1] - 1), label="damaged at")
    flip = data.draw(st.integers(1, 255), label="xor")
    original = bytearray(spool.path.read_bytes())
    original[at] ^= flip
    spool.path.write_bytes(bytes(original))
    sent: list[bytes] = []
    result = spool.flush(lambda _queue, group: sent.extend(group))
    hit = next(n for n, end in enumerate(ends) if at < end)
    assert sent == payloads[:hit] + payloads[hit + 1 :]  # only the damaged frame is not sent
    [aside] = result.aside
    assert aside.read_bytes() == bytes(original)
    assert not spool.path.exists()


def test_every_offset_of_a_small_spool_truncated_or_damaged_reads_back_the_rest() -> None:
    payloads = [b"", b"a" * 5, b"RCS1" * 3, b"z" * 300]  # one holding the frame marker
    frames = [frame("q", p) for p in payloads]
    data = b"".join(frames)
    ends = [sum(map(len, frames[: n + 1])) for n in range(len(frames))]
    for at in range(len(data) + 1):
        entries, skipped = parse(data[:at])
        whole = sum(1 for end in ends if end <= at)
        assert [p for _q, p in entries] == payloads[:whole], at
        assert (skipped > 0) == (at not in (0, *ends)), at  # a marker inside: two spans
    for at in range(len(data)):
        hit = next(n for n, end in enumerate(ends) if at < end)
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[at] ^= flip
            entries, skipped = parse(bytes(damaged))
            assert [p for _q, p in entries] == payloads[:hit] + payloads[hit + 1 :], (at, flip)
            assert skipped >= 1
