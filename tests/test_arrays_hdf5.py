"""``--arrays FILE.h5``: the arrays in one HDF5 file readable with h5py alone, the rows
pointing at them, every record's array there exactly once."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

import collector
from collector.arrays.sink import ArraySink
from collector.arrays.superblock import clear_status_flags, lookup3
from collector.daemon import Collector
from collector.errors import AlreadyRunning, ConfigError, DatabaseUnavailable
from tests.helpers import collector as cli
from tests.helpers import drain
from tests.test_arrays import DATABASES, named_cases, same
from workers.checks import Limits
from workers.emitter import Emitter


def as_sent(data: h5py.Dataset, slot: int) -> np.ndarray:
    """One slot as it was sent (datetimes and timedeltas are stored as int64)."""
    want = np.dtype(data.attrs["dtype"])
    storage = want.str.replace("M8", "i8").replace("m8", "i8").split("[")[0]
    return np.asarray(data[slot]).astype(storage).view(want)


def by_id(path: Path) -> dict[str, list[np.ndarray]]:
    """Every array of the file by the ``_id`` beside it, with h5py alone (the documented way)."""
    found: dict[str, list[np.ndarray]] = {}
    with h5py.File(path, "r", libver="latest", swmr=True) as file:

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Group) and "data" in obj:
                data, ids = obj["data"], obj["_id"][:]
                for slot in np.flatnonzero(ids != b""):
                    found.setdefault(ids[slot].decode(), []).append(as_sent(data, slot))

        file.visititems(visit)
    return found


def run(
    db_url: str, settings, fake_redis, path: Path, records: list[tuple[str, dict]], arrays=True
) -> None:
    biggest = max(v.nbytes for _, d in records for v in d.values() if isinstance(v, np.ndarray))
    limits = Limits(max_record_bytes=biggest + (1 << 20))
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    buffered = Emitter(queue=settings.queue, client=fake_redis, buffer=1000)
    for index, (key, data) in enumerate(records):
        (emitter if index % 2 else buffered).emit(data, table="arr", key=key)
    buffered.flush()
    chosen = replace(settings, db_url=db_url, limits=limits, arrays=str(path) if arrays else None)
    daemon = Collector(chosen, client=fake_redis)
    daemon.start()
    drain(daemon)
    daemon.close()


@pytest.mark.parametrize("db", DATABASES)
def test_arrays_go_to_the_file_exactly_and_read_back(request, db, settings, fake_redis, tmp_path):
    db_url, path = request.getfixturevalue(db), tmp_path / "results.h5"
    values = [*named_cases(), np.random.default_rng(2).standard_normal(2 << 20)]  # + 16 MiB
    records = [(f"r{i}", {"i": i, "K": v}) for i, v in enumerate(values)]
    records.append(("r0", {"i": 0, "K": values[0] + 1}))  # a rerun: the first row stays
    records.append(("bad", {"i": "text", "K": values[1]}))  # refused: i holds ints
    run(db_url, settings, fake_redis, path, records)
    assert [f[b"reason"] for _, f in fake_redis.xrange(f"{settings.queue}:dead")] == [
        b"column 'i' holds int values, this record has str"
    ]
    frame = collector.read("arr", db_url, arrays=str(path)).sort_values("i")
    assert len(frame) == len(values)
    for back, sent in zip(frame["K"], values, strict=True):
        assert same(back, sent), sent.dtype
    stored = by_id(path)  # empty arrays stay in the row: HDF5 cannot chunk zero-length axes
    kept = {f"r{i}": v for i, v in enumerate(values) if v.size}
    assert set(stored) == set(kept)
    for rid, arrays in stored.items():
        assert len(arrays) == 1 and same(arrays[0], kept[rid]), rid


def test_reading_pointers_needs_the_file(settings, fake_redis, tmp_path, monkeypatch) -> None:
    path = tmp_path / "a.h5"
    run(settings.db_url, settings, fake_redis, path, [("r", {"K": np.arange(3.0)})])
    with pytest.raises(ConfigError, match="pass arrays=PATH or set COLLECTOR_ARRAYS"):
        collector.read("arr", settings.db_url)
    monkeypatch.setenv("COLLECTOR_ARRAYS", str(path))
    assert same(collector.read("arr", settings.db_url)["K"][0], np.arange(3.0))


def test_a_row_committed_before_its_ids_were_written_is_repaired_at_start(
    settings, fake_redis, tmp_path, monkeypatch
) -> None:
    """A crash after the commit and before the file names the slot's ``_id``: the next start
    reads the committed pointers and names them."""
    path = tmp_path / "a.h5"
    calls, real = itertools.count(), ArraySink._committed

    def after_commit_down(self: ArraySink, *args: object) -> list:
        if next(calls):  # the first asks before the commit; the second, after it, fails
            raise DatabaseUnavailable("gone")
        return real(self, *args)

    monkeypatch.setattr(ArraySink, "_committed", after_commit_down)
    run(settings.db_url, settings, fake_redis, path, [("r", {"K": np.arange(3.0)})])
    assert by_id(path) == {}  # the row committed, the slot not yet named
    monkeypatch.undo()
    sink = Collector(replace(settings, arrays=str(path)), client=fake_redis).store
    assert isinstance(sink, ArraySink)
    sink.write([])
    sink.close()
    assert list(by_id(path)) == ["r"]


def test_one_writer_per_file(settings, fake_redis, tmp_path) -> None:
    first = Collector(replace(settings, arrays=str(tmp_path / "a.h5")), client=fake_redis)
    with pytest.raises(AlreadyRunning, match="already writes arrays to"):
        Collector(replace(settings, arrays=str(tmp_path / "a.h5")), client=fake_redis)
    first.close()


def test_a_collector_whose_start_fails_keeps_no_arrays_file(settings, fake_redis, tmp_path):
    """A start refused (another collector holds the SQLite file) releases the arrays file the
    sink opened, so the process can go on without holding it."""
    assert settings.db_url.startswith("sqlite:///")
    first = Collector(settings, client=fake_redis)
    first.start()
    try:
        second = Collector(replace(settings, arrays=str(tmp_path / "b.h5")), client=fake_redis)
        with pytest.raises(AlreadyRunning):
            second.start()
        Collector(replace(settings, arrays=str(tmp_path / "b.h5")), client=fake_redis).close()
    finally:
        first.close()


def test_lookup3_matches_the_reference_vectors() -> None:
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


WRITER = """
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "w", libver="latest")
d = f.create_dataset("data", shape=(0, 8), maxshape=(None, 8), dtype="f8", chunks=(1, 8))
f.swmr_mode = True
for i in range(10**6):
    d.resize(i + 1, axis=0); d[i] = i; d.flush()
    if i == 200: print("writing", flush=True)
"""


def test_a_file_whose_swmr_writer_was_killed_opens_for_writing_again(tmp_path) -> None:
    path = tmp_path / "killed.h5"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
    assert writer.stdout is not None and writer.stdout.readline() == b"writing\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    with pytest.raises(OSError, match="h5clear"):
        h5py.File(path, "a", libver="latest")
    assert clear_status_flags(path) is True
    with h5py.File(path, "a", libver="latest") as file:
        data = file["data"]
        assert len(data) > 200 and (data[:, 0] == np.arange(len(data))).all()
    assert clear_status_flags(path) is False  # a clean close leaves no flags


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing" / "a.h5", "No such file or directory"),
        (lambda p: (p / "a.h5").write_bytes(b"not hdf5" * 20) and p / "a.h5", "not an HDF5 file"),
    ],
    ids=["no-directory", "not-hdf5"],
)
def test_a_bad_arrays_path_is_one_line_and_a_non_zero_exit(
    real_redis, queue, sqlite_url, tmp_path, make, message
) -> None:
    path = make(tmp_path)
    done = cli("run", "--queue", queue, "--db-url", sqlite_url, "--arrays", str(path))
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_export_names_where_each_array_is(settings, fake_redis, tmp_path) -> None:
    import json

    path, out = tmp_path / "a.h5", tmp_path / "arr.jsonl"
    value = np.arange(12, dtype="f4").reshape(3, 4)
    run(settings.db_url, settings, fake_redis, path, [("r", {"K": value})])
    done = cli("export", "arr", "--db-url", settings.db_url, "--format", "jsonl", "-o", str(out))
    assert done.returncode == 0, done.stderr
    (row,) = map(json.loads, out.read_text().splitlines())
    with h5py.File(path, "r") as file:
        mine = file.attrs["collector_file"]
        assert row["K"] == {"hdf5": "/arr/K/f4_3x4", "slot": 0, "file": mine}
        assert same(file[row["K"]["hdf5"]]["data"][row["K"]["slot"]], value)


@pytest.mark.parametrize("where", ["table", "hdf5"])
def test_export_hdf5_writes_scalars_and_arrays_exactly(where, settings, fake_redis, tmp_path):
    values = named_cases()
    records = [
        (f"r{i}", {"i": i, "K": v, "s": f"t{i}" if i % 3 else None}) for i, v in enumerate(values)
    ]
    records.append(("plain", {"i": -1, "K": b"\x00raw"}))
    source = tmp_path / "a.h5"
    run(settings.db_url, settings, fake_redis, source, records, arrays=where == "hdf5")
    out = tmp_path / "out.h5"
    done = cli(
        "export", "arr", "--db-url", settings.db_url, "--format", "hdf5", "-o", str(out),
        "--arrays", str(source),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with h5py.File(out, "r") as file:
        table = file["arr"]
        ids = [v.decode() for v in table["_id"][:]]
        index = dict(zip(ids, table["i"][:].tolist(), strict=True))
        strings = dict(zip(ids, table["s"][:], strict=True))
        nulls = dict(zip(ids, table["_null/s"][:], strict=True))
        for rid, data in records:
            assert index[rid] == data["i"]
            assert nulls[rid] == (data.get("s") is None)
            if data.get("s") is not None:
                assert strings[rid].decode() == data["s"]
        found = {}
        for name, group in table["K"].items():
            for slot, rid in enumerate(group["_id"][:]):
                data = group["data"]
                found[rid.decode()] = data[slot] if name == "bytes" else as_sent(data, slot)
    assert found.pop("plain").tobytes() == b"\x00raw"
    assert set(found) == {f"r{i}" for i in range(len(values))}
    for i, sent in enumerate(values):
        assert same(found[f"r{i}"], sent), sent.dtype


def test_a_hypothesis_class_of_arrays_goes_through_the_file_exactly(
    settings, fake_redis, tmp_path
) -> None:
    import hypothesis.extra.numpy as hnp
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st

    from tests.test_arrays import KEPT

    runs = itertools.count()
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)

    @hsettings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(hnp.arrays(KEPT, shapes), min_size=1, max_size=6))
    def check(values: list[np.ndarray]) -> None:
        fake_redis.flushall()
        n = next(runs)
        db_url, path = f"sqlite:///{tmp_path / f'{n}.db'}", tmp_path / f"{n}.h5"
        records = [(f"r{i}", {"i": i, "K": v}) for i, v in enumerate(values)]
        run(db_url, settings, fake_redis, path, records)
        frame = collector.read("arr", db_url, arrays=str(path)).sort_values("i")
        assert all(same(b, s) for b, s in zip(frame["K"], values, strict=True))
        stored = by_id(path)
        assert {rid: len(a) for rid, a in stored.items()} == {
            f"r{i}": 1 for i, v in enumerate(values) if v.size
        }
        assert all(same(stored[f"r{i}"][0], v) for i, v in enumerate(values) if v.size)

    check()
