"""Numpy arrays kept exactly: on the wire (workers.arrays), in the table, and back through
``collector.read``; what cannot travel exactly is refused with the reason."""

from __future__ import annotations

import struct
from dataclasses import replace

import hypothesis.extra.numpy as hnp
import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import collector
from collector.daemon import Collector
from tests.helpers import URL_PARAMS, drain
from workers.arrays import EXT_ARRAY, MARKER, Array, to_numpy
from workers.checks import Limits
from workers.emitter import Emitter
from workers.entry import decode_records
from workers.errors import DecodeError, EncodeError
from workers.record import Record

DTYPES = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128", ">f8", ">i4",
    "datetime64[ns]", "datetime64[D]", "timedelta64[us]",
]  # fmt: skip
KEPT = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(sizes=(16, 32, 64)),
    hnp.complex_number_dtypes(),
    hnp.datetime64_dtypes(),
    hnp.timedelta64_dtypes(),
)


def same(got: np.ndarray, sent: np.ndarray) -> bool:
    """Equal bit for bit: dtype, shape and every byte (NaN payloads, -0.0 included)."""
    want = np.array(sent, order="C")
    return got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()


def through_wire(value: np.ndarray) -> np.ndarray:
    data = Record.decode(Record("r", "t", {"k": value}).encode()).data["k"]
    assert isinstance(data, Array)
    return to_numpy(data)


def named_cases() -> list[np.ndarray]:
    cases = [np.arange(24).astype(d).reshape(2, 3, 4) for d in DTYPES]
    cases += [np.zeros((), "f8"), np.zeros((0,), "i2"), np.ones((3,), "c8"), np.ones((0, 5))]
    cases.append(np.asfortranarray(np.arange(24.0).reshape(2, 3, 4)))
    cases.append(np.arange(100, dtype="i8")[::7])
    cases.append(np.arange(60.0).reshape(6, 10)[1::2, ::3].T)
    nan = np.array([0x7FF0_0000_DEAD_BEEF, 0xFFF8_0000_0000_0001], "u8").view("f8")
    cases.append(np.concatenate([nan, np.array([-0.0, 0.0, np.inf])]))
    cases.append(np.array([0x7E01, 0x8000], "u2").view("f2"))  # float16 NaN payload, -0.0
    cases.append(np.array(["NaT", "2024-01-02T03:04:05.123456789"], "datetime64[ns]"))
    return cases


@pytest.mark.parametrize("value", named_cases(), ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_named_arrays_round_trip_the_wire_bit_for_bit(value: np.ndarray) -> None:
    assert same(through_wire(value), value)


@hsettings(max_examples=150, deadline=None)
@given(hnp.arrays(KEPT, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)))
def test_every_kept_array_round_trips_the_wire(value: np.ndarray) -> None:
    assert same(through_wire(value), value)
    assert same(through_wire(np.array(value, order="F")), value)
    if value.ndim:
        assert same(through_wire(value[::-2]), value[::-2])


def test_the_payload_is_the_documented_layout() -> None:
    wire = msgpack.unpackb(
        Record("r", "t", {"k": np.arange(6, dtype="<i2").reshape(2, 3)}).encode()
    )
    ext = wire["d"]["k"]
    assert ext.code == EXT_ARRAY == 1
    head = MARKER + bytes((1, 2)) + struct.pack("<2Q", 2, 3) + bytes((3,)) + b"<i2"
    assert ext.data == head + np.arange(6, dtype="<i2").tobytes()


def test_lists_and_scalars_stay_plain_values() -> None:
    data = {"a": [1, 2.5], "b": np.float32(0.5), "c": [np.arange(2)], "d": np.int8(3)}
    back = Record.decode(Record("r", "t", data).encode()).data
    assert back == {"a": [1, 2.5], "b": 0.5, "c": [[0, 1]], "d": 3}


REFUSED = [
    (np.array([1, "x"], dtype=object), "object array"),
    (np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]), "structured dtype"),
    (np.array(["ab", "c"]), "string and void"),
    (np.ma.masked_array([1, 2], mask=[0, 1]), "masked array"),
    (np.zeros(2, dtype=np.longdouble), "not a type kept exactly"),
]


@pytest.mark.parametrize(("value", "reason"), REFUSED, ids=lambda v: str(getattr(v, "dtype", v)))
def test_arrays_that_cannot_travel_exactly_are_refused_at_emit(value, reason, fake_redis) -> None:
    emitter = Emitter(queue="q", client=fake_redis)
    with pytest.raises(EncodeError, match=f"column 'k': .*{reason}"):
        emitter.emit({"k": value})
    buffered = Emitter(queue="q", client=fake_redis, buffer=10)
    with pytest.raises(EncodeError, match=reason):
        buffered.emit({"k": value})
    with pytest.raises(EncodeError, match=reason):
        emitter.emit_many([{"k": value}])
    assert fake_redis.xlen("q") == 0


def _raw(payload: bytes) -> bytes:
    wire = {"v": 1, "id": "r", "t": "t", "ts": 1.0, "src": {"host": "", "pid": 0, "job": None}}
    return msgpack.packb({**wire, "d": {"k": msgpack.ExtType(EXT_ARRAY, payload)}})


GOOD = MARKER + bytes((1, 1)) + struct.pack("<Q", 2) + b"\x03<f8" + bytes(16)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (GOOD[:-1], "15 data bytes, shape \\(2,\\) of <f8 needs 16"),
        (GOOD.replace(b"<f8", b"|O8"), "dtype '\\|O8' is not one kept exactly"),
        (b"\x93RCARX" + GOOD[6:], "does not start with the array marker"),
        (GOOD[:6] + b"\x02" + GOOD[7:], "layout version 2"),
        (GOOD[:7] + b"\x40" + GOOD[8:], "64 dimensions exceed 32"),
        (GOOD[:12], "truncated header"),
        (
            MARKER + bytes((1, 2)) + struct.pack("<2Q", 1 << 62, 0) + b"\x03<f8",
            "shape \\(4611686018427387904, 0\\) of <f8 is larger than any array can be",
        ),
        (GOOD.replace(b"\x03<f8", b"\x10<M8[9999999999s]"), "dtype '<M8\\[9999999999s\\]' is not"),
    ],
)
def test_malformed_payloads_are_refused_with_the_reason(payload: bytes, reason: str) -> None:
    assert Record.decode(_raw(GOOD)).data["k"] == GOOD
    with pytest.raises(DecodeError, match=f"^array payload: {reason}"):
        Record.decode(_raw(payload))


def test_plain_bytes_that_look_like_an_array_are_refused() -> None:
    raw = Record("r", "t", {"k": GOOD}).encode()
    with pytest.raises(DecodeError, match=r"bytes beginning with .* are reserved for arrays"):
        Record.decode(raw)
    many = [Record(f"r{i}", "t", {"k": GOOD if i == 3 else b"x"}) for i in range(5)]
    with pytest.raises(DecodeError, match="reserved for arrays"):
        decode_records(_entry(many))


def _entry(records: list[Record]) -> bytes:
    from workers.entry import encode_entries, packed

    (entry,) = encode_entries([packed(r) for r in records])
    return entry


def test_a_refused_record_keeps_its_array_in_the_dead_letter(settings, fake_redis) -> None:
    value = np.arange(5, dtype="f4")
    emitter = Emitter(queue=settings.queue, client=fake_redis, buffer=10)
    emitter.emit({"k": 1})
    emitter.emit({"k": value})  # column k holds ints: refused by the store
    emitter.flush()
    daemon = Collector(settings, client=fake_redis)
    daemon.start()
    drain(daemon)
    daemon.close()
    ((_id, letter),) = fake_redis.xrange(f"{settings.queue}:dead")
    assert "holds int values" in letter[b"reason"].decode()
    assert same(to_numpy(Record.decode(letter[b"m"]).data["k"]), value)


def store_and_read(db_url: str, settings, fake_redis, values: list[np.ndarray]) -> list:
    big = max(v.nbytes for v in values) + (1 << 20)
    limits = Limits(max_record_bytes=max(big, 1 << 20))
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    buffered = Emitter(queue=settings.queue, client=fake_redis, buffer=1000)
    for index, value in enumerate(values):
        (emitter if index % 2 else buffered).emit({"i": index, "k": value}, table="arr")
    buffered.flush()
    daemon = Collector(replace(settings, db_url=db_url, limits=limits), client=fake_redis)
    daemon.start()
    drain(daemon)
    daemon.close()
    assert fake_redis.xlen(f"{settings.queue}:dead") == 0
    frame = collector.read("arr", db_url).sort_values("i")
    return list(frame["k"])


DATABASES = URL_PARAMS  # SQLite, PostgreSQL, MariaDB


@pytest.mark.parametrize("db", DATABASES)
def test_arrays_are_stored_and_read_back_exactly(request, db, settings, fake_redis) -> None:
    values = named_cases()
    got = store_and_read(request.getfixturevalue(db), settings, fake_redis, values)
    assert len(got) == len(values)
    for back, sent in zip(got, values, strict=True):
        assert isinstance(back, np.ndarray) and same(back, sent), sent.dtype


@pytest.mark.parametrize("db", DATABASES[:2])  # MariaDB: over its packet, next test
def test_a_16_mib_array_is_stored_exactly(request, db, settings, fake_redis) -> None:
    value = np.random.default_rng(1).standard_normal(2 << 20)  # 16 MiB of float64
    (back,) = store_and_read(request.getfixturevalue(db), settings, fake_redis, [value])
    assert same(back, value)


@pytest.mark.mysql
def test_on_mariadb_an_array_over_the_packet_in_the_row_is_refused_with_the_reason(
    mysql_url, settings, fake_redis
) -> None:
    """MariaDB takes a row in one statement under ``max_allowed_packet``, a blob as hex (twice
    its bytes): an array of half the packet does not fit and is dead-lettered, never cut."""
    import sqlalchemy as sa

    engine = sa.create_engine(mysql_url)
    with engine.connect() as conn:
        packet = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())
    engine.dispose()
    value = np.zeros(packet // 2, "u1")
    limits = Limits(max_record_bytes=packet * 2)
    Emitter(queue=settings.queue, client=fake_redis).emit({"k": value}, table="arr")
    daemon = Collector(replace(settings, db_url=mysql_url, limits=limits), client=fake_redis)
    daemon.start()
    drain(daemon)
    daemon.close()
    ((_id, letter),) = fake_redis.xrange(f"{settings.queue}:dead")
    assert f"over the server's max_allowed_packet of {packet} bytes" in letter[b"reason"].decode()
    assert same(to_numpy(Record.decode(letter[b"m"], limits).data["k"]), value)


@pytest.mark.parametrize("db", DATABASES)
def test_a_hypothesis_class_of_arrays_is_stored_exactly(request, db, settings, fake_redis):
    db_url = request.getfixturevalue(db)
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)

    @hsettings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(hnp.arrays(KEPT, shapes), min_size=1, max_size=8))
    def check(values: list[np.ndarray]) -> None:
        fake_redis.flushall()
        got = store_and_read(db_url, settings, fake_redis, values)
        assert all(same(b, s) for b, s in zip(got, values, strict=True))
        import sqlalchemy as sa

        engine = sa.create_engine(db_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE arr")
        engine.dispose()

    check()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_writes_an_array_cell_as_dtype_shape_and_base64(
    fmt, settings, fake_redis, tmp_path
) -> None:
    import base64
    import csv
    import json

    from tests.helpers import collector as cli

    values = [np.arange(6, dtype=">i2").reshape(2, 3), np.array(np.nan), np.zeros((0, 2), "c8")]
    store_and_read(settings.db_url, settings, fake_redis, values)
    out = tmp_path / f"arr.{fmt}"
    done = cli("export", "arr", "--db-url", settings.db_url, "--format", fmt, "-o", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    rows = (
        list(csv.DictReader(text.splitlines()))
        if fmt == "csv"
        else map(json.loads, text.splitlines())
    )
    cells = {int(r["i"]): json.loads(r["k"]) if fmt == "csv" else r["k"] for r in rows}
    for index, sent in enumerate(values):
        cell = cells[index]
        data = np.frombuffer(base64.b64decode(cell["base64"]), cell["dtype"])
        assert same(data.reshape(cell["shape"]), sent)


MODELS = """
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class Spectrum(Base):
    __tablename__ = "spectra"
    _id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    _ts = mapped_column(sa.DateTime)
    _host = mapped_column(sa.Text)
    _job = mapped_column(sa.Text)
    I: Mapped[int] = mapped_column(sa.Integer)
    K = mapped_column(sa.LargeBinary)
    S = mapped_column(sa.Float)
"""


def test_a_declared_binary_column_holds_arrays(settings, fake_redis, tmp_path) -> None:
    from collector.models import prepare_models

    (tmp_path / "spectra_models.py").write_text(MODELS)
    declared = prepare_models(str(tmp_path / "spectra_models.py"), settings.db_url)
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    value = np.linspace(0, 1, 7, dtype="f4")
    emitter.emit({"I": 1, "K": value}, table="spectra", key="a")
    emitter.emit({"I": 2, "S": value}, table="spectra", key="b")  # S holds floats
    daemon = Collector(settings, client=fake_redis, declared=declared)
    daemon.start()
    drain(daemon)
    daemon.close()
    ((_id, letter),) = fake_redis.xrange(f"{settings.queue}:dead")
    assert letter[b"reason"] == b"column 'S' holds float values, this record has bytes"
    (back,) = collector.read("spectra", settings.db_url)["K"]
    assert same(back, value)
