"""``--arrays``: a row's pointer is only ever followed into the file it was written to, and a
slot's ``_id`` names only the record whose committed row points at it: another file on the
same database, a file deleted or replaced under the collector, a row replaced by the conflict
rule."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

import collector
from collector.arrays.sink import ArraySink
from collector.daemon import Collector
from collector.errors import CommandFailed, ConfigError, DatabaseUnavailable
from tests.helpers import drain
from tests.test_arrays import same
from tests.test_arrays_hdf5 import by_id
from workers.emitter import Emitter


def collect(settings, fake_redis, path: Path | None, records: list[tuple[str, dict]]) -> None:
    """Emit ``records`` into table ``arr`` and drain them with a collector writing to ``path``."""
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    for key, data in records:
        emitter.emit(data, table="arr", key=key)
    daemon = Collector(replace(settings, arrays=str(path) if path else None), client=fake_redis)
    daemon.start()
    drain(daemon)
    daemon.close()


def test_a_row_is_never_read_from_another_arrays_file(settings, fake_redis, tmp_path) -> None:
    first, second = tmp_path / "a.h5", tmp_path / "b.h5"
    collect(settings, fake_redis, first, [("a0", {"K": np.full(3, 1.0)})])
    collect(settings, fake_redis, second, [("b0", {"K": np.full(3, 9.0)})])  # same group, slot 0
    for path in (first, second):
        with pytest.raises(ConfigError, match="is in another HDF5 file than"):
            collector.read("arr", settings.db_url, arrays=str(path))


def test_the_start_never_names_a_slot_for_a_row_of_another_file(
    settings, fake_redis, tmp_path
) -> None:
    first, second = tmp_path / "a.h5", tmp_path / "b.h5"
    collect(settings, fake_redis, first, [("a0", {"i": 0, "K": np.full(3, 1.0)})])
    collect(settings, fake_redis, second, [("bad", {"i": "text", "K": np.full(3, 9.0)})])
    assert fake_redis.xlen(f"{settings.queue}:dead") == 1  # its slot 0 of b.h5 stays unnamed
    sink = Collector(replace(settings, arrays=str(second)), client=fake_redis).store
    assert isinstance(sink, ArraySink)
    sink.write([])  # the start's repair: a0's row points at slot 0 of a.h5, not of b.h5
    sink.close()
    assert by_id(second) == {}
    assert list(by_id(first)) == ["a0"]


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_file_deleted_or_replaced_under_the_collector_stops_it_before_a_commit(
    how, settings, fake_redis, tmp_path
) -> None:
    path = tmp_path / "a.h5"
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    daemon = Collector(replace(settings, arrays=str(path)), client=fake_redis)
    daemon.start()
    emitter.emit({"K": np.full(3, 1.0)}, table="arr", key="r0")
    drain(daemon)
    copy = tmp_path / "copy.h5"
    shutil.copyfile(path, copy)
    os.remove(path)
    if how == "replaced":
        os.rename(copy, path)
    emitter.emit({"K": np.full(3, 2.0)}, table="arr", key="r1")
    with pytest.raises(ConfigError, match=f"--arrays {path} was deleted or replaced"):
        daemon.run_once()
    daemon.close()
    engine = sa.create_engine(settings.db_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT _id FROM arr").scalars().all() == ["r0"]  # r1: not
    engine.dispose()
    assert fake_redis.xpending(settings.queue, "collector")["pending"] == 1  # nor acknowledged


def test_a_row_replaced_by_the_conflict_rule_leaves_its_old_slot_unnamed(
    settings, fake_redis, tmp_path
) -> None:
    path = tmp_path / "a.h5"
    failed, fixed = np.full(3, -1.0), np.full(3, 5.0)
    collect(settings, fake_redis, path, [("x", {"K": failed, "_error": "boom"})])
    collect(settings, fake_redis, path, [("x", {"K": fixed})])  # a success replaces a failure
    ((back,),) = [collector.read("arr", settings.db_url, arrays=str(path))["K"]]
    assert same(back, fixed)
    named = by_id(path)
    assert list(named) == ["x"] and len(named["x"]) == 1 and same(named["x"][0], fixed)


def test_a_crash_after_replacing_a_row_leaves_one_slot_named_after_the_next_start(
    settings, fake_redis, tmp_path, monkeypatch
) -> None:
    path = tmp_path / "a.h5"
    collect(settings, fake_redis, path, [("x", {"K": np.full(3, -1.0), "_error": "boom"})])
    monkeypatch.setattr(ArraySink, "_mark", lambda *_args: None)  # killed after the commit
    collect(settings, fake_redis, path, [("x", {"K": np.full(3, 5.0)})])
    monkeypatch.undo()
    assert by_id(path) == {}  # the old slot unnamed before the commit, the new not yet named
    sink = Collector(replace(settings, arrays=str(path)), client=fake_redis).store
    sink.write([])
    sink.close()
    assert [a.tolist() for a in by_id(path)["x"]] == [[5.0] * 3]


def test_a_row_replaced_by_one_without_its_array_leaves_no_slot_named(
    settings, fake_redis, tmp_path
) -> None:
    path = tmp_path / "a.h5"
    collect(settings, fake_redis, path, [("x", {"i": 1, "K": np.ones(3), "_error": "boom"})])
    collect(settings, fake_redis, path, [("x", {"i": 1})])  # the rerun sent no array
    assert collector.read("arr", settings.db_url, arrays=str(path))["K"].isna().all()
    assert by_id(path) == {}


def test_a_batch_without_room_on_the_disk_waits_and_is_stored_later(
    settings, fake_redis, tmp_path, monkeypatch
) -> None:
    path = tmp_path / "a.h5"
    Emitter(queue=settings.queue, client=fake_redis).emit({"K": np.ones(4)}, table="arr", key="r")
    daemon = Collector(replace(settings, arrays=str(path)), client=fake_redis)
    daemon.start()
    full = os.statvfs_result((4096, 4096, 1000, 0, 0, 100, 0, 0, 0, 255))  # no block free
    monkeypatch.setattr(os, "statvfs", lambda _path: full)
    with pytest.raises(DatabaseUnavailable, match=r"0 bytes free on its file system, the batch"):
        daemon.run_once()
    monkeypatch.undo()
    drain(daemon)
    daemon.close()
    assert {rid: [a.tolist() for a in v] for rid, v in by_id(path).items()} == {"r": [[1.0] * 4]}


@pytest.mark.parametrize("step", ["arrays", "ids"])
def test_an_hdf5_write_error_stops_the_collector_and_a_restart_stores_each_array_once(
    step, settings, fake_redis, tmp_path, monkeypatch
) -> None:
    """h5py reports ENOSPC on a flush as a RuntimeError; HDF5 cannot go on with that file in
    the same process, so the collector stops in one line before the batch is acknowledged
    (whether its rows committed or not) and the next start stores every record once."""
    import h5py

    path = tmp_path / "a.h5"
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    for i in range(3):
        emitter.emit({"K": np.full(4, float(i))}, table="arr", key=f"r{i}")
    chosen = replace(settings, arrays=str(path))
    daemon = Collector(chosen, client=fake_redis)
    daemon.start()
    if step == "ids":  # the rows committed; naming their slots meets the full disk
        monkeypatch.setattr(ArraySink, "_set_id", _full_disk)
    else:
        monkeypatch.setattr(h5py.Dataset, "flush", _full_disk)
    with pytest.raises(CommandFailed, match=r"arrays file .*: Unable to flush .* collector stops"):
        daemon.run_once()
    daemon.close()
    monkeypatch.undo()
    assert fake_redis.xpending(settings.queue, "collector")["pending"] == 3  # not acknowledged
    emitter.emit({"K": np.full(4, 3.0)}, table="arr", key="r3")
    again = Collector(replace(chosen, claim_idle=0), client=fake_redis)
    again.start()
    drain(again)
    again.close()
    assert {rid: [a.tolist() for a in v] for rid, v in by_id(path).items()} == {
        f"r{i}": [[float(i)] * 4] for i in range(4)
    }
    frame = collector.read("arr", settings.db_url, arrays=str(path))
    assert sorted(frame["_id"]) == [f"r{i}" for i in range(4)]


def _full_disk(*_args: object) -> None:
    raise RuntimeError("Unable to flush dataset (file write failed: errno = 28, error message = "
                       "'No space left on device')")  # fmt: skip
