"""Attacks on the pipelined collector's writer process: whose code it runs, and what its frames
carry at the edges of what the single-process collector stores."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import fakeredis
import msgpack
import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import collector
from collector.cli import main
from collector.daemon import Collector
from collector.errors import AlreadyRunning
from collector.lock import WriterLock
from collector.pipeline import PipelinedCollector
from collector.settings import Settings
from tests.helpers import dead_reasons, drain, rows
from tests.test_arrays import named_cases
from tests.test_arrays import same as same_array
from tests.test_arrays_hdf5 import by_id
from workers import Emitter
from workers.arrays import RESERVED
from workers.checks import MAX_DEPTH, Limits
from workers.entry import BATCH_PREFIX

HOSTILE = "open({marker!r}, 'w').write('hostile')\n"
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20).filter(lambda b: not b.startswith(RESERVED))  # arrays' prefix
    | st.datetimes(timezones=st.just(dt.UTC))
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


def test_the_writer_runs_our_code_not_a_collector_package_in_the_working_directory(
    settings: Settings, fake_redis, tmp_path, monkeypatch
) -> None:
    """``python -m`` puts the working directory first on sys.path: another user's
    collector/pipeline_writer.py there must not run (with or without an __init__.py)."""
    marker = tmp_path / "ran"
    for with_init in (False, True):
        folder = tmp_path / f"cwd{with_init}"
        (folder / "collector").mkdir(parents=True)
        (folder / "collector" / "pipeline_writer.py").write_text(HOSTILE.format(marker=str(marker)))
        if with_init:
            (folder / "collector" / "__init__.py").write_text(HOSTILE.format(marker=str(marker)))
        monkeypatch.chdir(folder)
        collector = PipelinedCollector(replace(settings, pipeline=True), client=fake_redis)
        collector.start()
        try:
            assert collector.writer.alive
        finally:
            collector.close()
        assert collector.writer.proc is not None and collector.writer.proc.returncode == 0
        assert not marker.exists()


def nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("pipeline", [False, True])
def test_a_record_nested_to_the_highest_max_depth_is_stored_alike_in_both_modes(
    settings: Settings, fake_redis, queue, pipeline
) -> None:
    """--max-depth at its ceiling: a value nested that deep is stored exactly in either mode
    (the frame's own nesting costs the pipelined collector nothing)."""
    deep = replace(settings, limits=Limits(max_depth=MAX_DEPTH), pipeline=pipeline)
    emitter = Emitter(queue=queue, client=fake_redis)
    emitter.emit({"x": nested(MAX_DEPTH - 1)}, key="deep")  # the map is a level
    emitter.emit({"x": nested(MAX_DEPTH)}, key="deeper")
    kind = PipelinedCollector if pipeline else Collector
    collector = kind(deep, client=fake_redis)
    collector.start()
    try:
        assert drain(collector) == 2
    finally:
        collector.close()
    assert dead_reasons(fake_redis, queue) == [f"values nested deeper than {MAX_DEPTH} levels"]
    ((row,),) = [[r for r in rows(settings.db_url, "results")]]
    assert row["_id"] == "deep" and json.loads(row["x"]) == nested(MAX_DEPTH - 1)
    assert fake_redis.xpending(queue, "collector")["pending"] == 0


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1021, 2000])
def test_a_max_depth_no_database_can_store_is_one_config_error(depth: int) -> None:
    """Past MAX_DEPTH Python's json gives up (near 950 levels) and msgpack's frame (near
    1,020): such a --max-depth would crash or retry, so it is refused at the start."""
    result = CliRunner().invoke(main, ["run", "--max-depth", str(depth)])
    assert result.exit_code == 2
    assert f"{depth} is not in the range 1<=x<={MAX_DEPTH}" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(ValueError, match=f"max_depth must be 1 to {MAX_DEPTH}, not {depth}"):
        Limits(max_depth=depth)


@pytest.mark.parametrize("pipeline", [False, True])
def test_arrays_of_every_kind_go_to_the_hdf5_file_alike_in_both_modes(
    settings: Settings, fake_redis, tmp_path, pipeline
) -> None:
    """--arrays: the writer process holds the HDF5 file; every array kind (and a 16 MiB one, a
    frame far past the socket's buffer) is in the file and read back exactly, a refused row is
    the same dead letter."""
    path = tmp_path / "results.h5"
    values = [*named_cases(), np.random.default_rng(2).standard_normal(2 << 20)]
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    for i, value in enumerate(values):
        emitter.emit({"i": i, "K": value}, table="arr", key=f"r{i}")
    emitter.emit({"i": "text", "K": values[1]}, table="arr", key="bad")
    limits = Limits(max_record_bytes=(2 << 20) * 8 + (1 << 20))
    chosen = replace(settings, limits=limits, arrays=str(path), pipeline=pipeline)
    daemon = (PipelinedCollector if pipeline else Collector)(chosen, client=fake_redis)
    daemon.start()
    try:
        drain(daemon)
    finally:
        daemon.close()
    assert dead_reasons(fake_redis, settings.queue) == [
        "column 'i' holds int values, this record has str"
    ]
    frame = collector.read("arr", settings.db_url, arrays=str(path)).sort_values("i")
    assert len(frame) == len(values)
    for back, sent in zip(frame["K"], values, strict=True):
        assert same_array(back, sent), sent.dtype
    stored = by_id(path)
    kept = {f"r{i}": v for i, v in enumerate(values) if v.size}
    assert set(stored) == set(kept)
    assert all(len(a) == 1 and same_array(a[0], kept[rid]) for rid, a in stored.items())


def test_a_second_collector_is_told_the_pid_that_stops_the_pair(settings, fake_redis) -> None:
    """The lock names the reader (the process SIGTERM stops in order), not the writer, which
    ignores SIGTERM: "stop it first" must be doable with the pid it gives."""
    piped = PipelinedCollector(replace(settings, pipeline=True), client=fake_redis)
    piped.start()
    try:
        assert piped.writer.proc is not None
        with pytest.raises(AlreadyRunning) as caught:
            WriterLock(settings.db_url.removeprefix("sqlite:///")).acquire()
    finally:
        piped.close()
    assert f"(pid {os.getpid()} on host " in str(caught.value)
    assert f"pid {piped.writer.proc.pid} " not in str(caught.value)


def test_a_hangup_leaves_the_stop_to_the_reader(settings, fake_redis, queue) -> None:
    """SIGHUP (serve's terminal closing, sent to the whole group) stops serve in order: the
    writer must not die of it first, losing the orderly commit of what it holds."""
    piped = PipelinedCollector(replace(settings, pipeline=True), client=fake_redis)
    piped.start()
    try:
        assert piped.writer.proc is not None
        os.kill(piped.writer.proc.pid, signal.SIGHUP)
        Emitter(queue=queue, client=fake_redis).emit({"x": 1}, key="after")
        assert drain(piped) == 1
    finally:
        piped.close()
    assert piped.writer.proc.returncode == 0
    assert [r["_id"] for r in rows(settings.db_url, "results")] == ["after"]


def has_results(db_url: str) -> bool:
    engine = sa.create_engine(db_url)
    try:
        return sa.inspect(engine).has_table("results")
    finally:
        engine.dispose()


def through(chosen: Settings, client, pipeline: bool) -> tuple:
    """The rows and dead letters one collector of the mode leaves after draining its queue."""
    daemon = (PipelinedCollector if pipeline else Collector)(
        replace(chosen, pipeline=pipeline, batch_size=2), client=client
    )
    daemon.start()
    try:
        drain(daemon)
    finally:
        daemon.close()
    found = rows(chosen.db_url, "results") if has_results(chosen.db_url) else []
    return found, dead_reasons(client, chosen.queue), client.xlen(chosen.queue)


@hsettings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.lists(st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3), max_size=3),
        min_size=1,
        max_size=4,
    )
)
def test_the_same_records_leave_the_same_rows_and_dead_letters_in_both_modes(
    tmp_path_factory, queue, batches
) -> None:
    """Columns that clash in type across records (dead letters), every value kind, batch
    entries split over transactions: single and pipelined leave the same database."""
    folder = tmp_path_factory.mktemp("modes")
    one = Settings(db_url=f"sqlite:///{folder / 'one.db'}", queue=queue, max_wait=0.05)
    two = replace(one, db_url=f"sqlite:///{folder / 'two.db'}", queue=f"{queue}:2")
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    emitter = Emitter(queue=queue, client=client)
    for index, batch in enumerate(batches):
        for i, data in enumerate(batch):
            emitter.emit(data, key=f"r{index}-{i}")
        emitter.emit_many(batch)  # a batch entry too: the same records, ids of their own
    for _, fields in client.xrange(queue):  # the very bytes, for the other mode
        client.xadd(two.queue, fields)
    assert through(one, client, False) == through(two, client, True)


def test_the_writer_outlives_the_thread_that_started_it(settings, fake_redis, queue) -> None:
    """PR_SET_PDEATHSIG fires when the forking *thread* ends: an embedder that starts the
    collector in one thread and runs it in another must keep its writer (it dies with the
    process, not with a thread)."""
    piped = PipelinedCollector(replace(settings, pipeline=True), client=fake_redis)
    starter = threading.Thread(target=piped.start)
    starter.start()
    starter.join()
    try:
        Emitter(queue=queue, client=fake_redis).emit({"x": 1}, key="later")
        time.sleep(0.3)  # what the thread's end would do has had time to happen
        assert drain(piped) == 1
    finally:
        piped.close()
    assert piped.writer.proc is not None and piped.writer.proc.returncode == 0
    assert [r["_id"] for r in rows(settings.db_url, "results")] == ["later"]


def test_the_writer_runs_the_readers_own_collector_package(settings, tmp_path) -> None:
    """A reader running a source tree (``python -m collector`` in a checkout, uninstalled or
    beside an installed copy) starts a writer of that same tree, not of whatever else is
    installed: the two must speak the same frames."""
    source = tmp_path / "src"
    for package in ("collector", "workers"):
        shutil.copytree(Path(collector.__file__).parent.parent / package, source / package)
    writer_file = source / "collector" / "pipeline_writer.py"
    mark = "\nopen(__file__ + '.ran', 'w').close()\n"
    writer_file.write_text(writer_file.read_text() + mark)
    reader = (
        f"import sys; sys.path.insert(0, {str(source)!r}); import dataclasses\n"
        "from collector.writer_process import WriterProcess\n"
        "from collector.settings import Settings\n"
        f"w = WriterProcess(Settings(db_url={settings.db_url!r}, pipeline=True))\n"
        "w.start(); w.stop(); print(w.proc.returncode)\n"
    )
    done = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True)
    assert done.stdout.strip() == "0", done.stderr
    assert Path(f"{writer_file}.ran").exists()


def batch_entry(datas: list[object]) -> bytes:
    """A batch entry (wire version 2) of table ``t`` whose records' ``d`` are ``datas``, as a
    job could craft it: nothing checks ``d`` before the collector does."""
    n = len(datas)
    wire = {
        "v": 2, "t": "t", "src": {"host": "h", "pid": 1, "job": None},
        "id": [f"r{i}" for i in range(n)], "ts": [1.0] * n, "el": [None] * n, "rss": [None] * n,
        "d": datas,
    }  # fmt: skip
    raw = msgpack.packb(wire, use_bin_type=True)
    assert raw.startswith(BATCH_PREFIX)
    return raw


@pytest.mark.parametrize("pipeline", [False, True])
@pytest.mark.parametrize("data", [None, 1, 1.5, "x", b"x", [1], True])
def test_a_batch_entry_record_whose_data_is_no_map_is_dead_lettered_alone(
    settings: Settings, fake_redis, queue, pipeline, data
) -> None:
    """One record of a batch entry whose ``d`` is not a map is a dead letter alone, as the
    version-1 record it would have been, with its reason; the others are stored. (It raised
    AttributeError in the decode: the writer process crashed, or run_once, every delivery.)"""
    fake_redis.xadd(queue, {"m": batch_entry([{"x": 1}, data, {"x": 3}])})
    kind = PipelinedCollector if pipeline else Collector
    collector = kind(replace(settings, pipeline=pipeline), client=fake_redis)
    collector.start()
    try:
        assert drain(collector) == 1
    finally:
        collector.close()
    assert dead_reasons(fake_redis, queue) == [f"d must be a map, not {type(data).__name__}"]
    ((_, fields),) = fake_redis.xrange(f"{queue}:dead")
    letter = msgpack.unpackb(fields[b"m"], raw=False)
    assert letter["v"] == 1 and letter["id"] == "r1" and letter["d"] == data
    assert sorted(r["_id"] for r in rows(settings.db_url, "t")) == ["r0", "r2"]
    assert fake_redis.xpending(queue, "collector")["pending"] == 0
