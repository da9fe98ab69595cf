"""The pipelined collector (collector.pipeline) with its real writer process, on fakeredis and
SQLite: what it stores and counts, the frames' exactness, the lock, a dead writer, secrets."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from collector.daemon import Collector
from collector.errors import (
    RET_CONFIG,
    AlreadyRunning,
    CommandFailed,
    ConfigError,
    DatabaseUnavailable,
)
from collector.lock import WriterLock
from collector.pipeline import PipelinedCollector
from collector.pipeline_wire import batch_frame, settings_frame, settings_of, unpack
from collector.settings import Settings
from tests.helpers import dead_reasons, drain, rows
from workers import Emitter
from workers.checks import Limits

REFUSED = "column 'x' holds int values, this record has str"  # the store's reason
FAST = hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.lists(st.tuples(st.binary(min_size=1, max_size=12), st.binary(max_size=200))))
def test_a_batch_frame_hands_the_writer_the_entries_exactly_as_read(entries) -> None:
    """Ids and record bytes travel as bytes, whatever they hold (the writer decodes them)."""
    ids, raws = [e[0] for e in entries], [e[1] for e in entries]
    assert unpack(batch_frame(7, ids, raws)) == ["batch", 7, ids, raws]


def test_settings_travel_whole(settings: Settings) -> None:
    given_ = replace(settings, limits=Limits(max_depth=3), pipeline=True, models="m.py")
    _, fields, verbose = unpack(settings_frame(given_, True))
    assert settings_of(fields) == given_ and verbose is True


@pytest.mark.parametrize(("text", "expected"), [("1", True), ("yes", True), ("0", False)])
def test_collector_pipeline_switches_the_mode(monkeypatch, text, expected) -> None:
    monkeypatch.setenv("COLLECTOR_PIPELINE", text)
    assert Settings.from_env().pipeline is expected
    assert Settings.from_env(pipeline=not expected).pipeline is not expected  # the flag wins


def test_a_bad_collector_pipeline_is_one_config_error(monkeypatch) -> None:
    monkeypatch.setenv("COLLECTOR_PIPELINE", "sometimes")
    with pytest.raises(ConfigError, match=r"COLLECTOR_PIPELINE must be 1 or 0.*'sometimes'"):
        Settings.from_env()


@pytest.fixture
def piped(settings: Settings, fake_redis):
    collector = PipelinedCollector(replace(settings, pipeline=True), client=fake_redis)
    collector.start()
    yield collector
    collector.close()


class Seen:
    """An observer that keeps what it is told."""

    def __init__(self) -> None:
        self.stored = self.dead = 0

    def batch_done(self, seconds: float, stored: int, dead: int) -> None:
        self.stored, self.dead = self.stored + stored, self.dead + dead

    def batch_failed(self, kind: str) -> None:
        raise AssertionError(kind)


def test_records_are_stored_counted_and_acknowledged(settings, fake_redis, queue) -> None:
    seen = Seen()
    small = replace(settings, batch_size=40, pipeline=True)
    collector = PipelinedCollector(small, client=fake_redis, observer=seen)
    collector.start()
    emitter = Emitter(queue=queue, client=fake_redis)
    try:
        for i in range(300):
            emitter.emit({"i": i, "x": i / 3}, key=f"k{i}")
        emitter.emit_many([{"i": 1000 + i} for i in range(50)])
        fake_redis.xadd(queue, {"m": b"\xc1 not msgpack"})
        emitter.emit({"i": 0}, key="k0")  # a repeat: stored once
        assert drain(collector) == 303  # entries: the 50 records of emit_many are one
    finally:
        collector.close()
    stored = rows(settings.db_url, "results")
    assert len(stored) == 350 and len({r["_id"] for r in stored}) == 350
    assert {r["x"] for r in stored if r["_id"] == "k7"} == {7 / 3}
    (reason,) = dead_reasons(fake_redis, queue)
    assert reason.startswith("not valid msgpack")
    assert fake_redis.xpending(queue, "collector")["pending"] == 0
    assert fake_redis.xlen(queue) == 0
    counters = collector.counters
    assert (counters.records, counters.stored, counters.dead) == (352, 350, 1)
    assert (seen.stored, seen.dead) == (350, 1)


def test_a_second_collector_on_the_file_fails_before_reading(settings, fake_redis, queue):
    Emitter(queue=queue, client=fake_redis).emit({"x": 1})
    lock = WriterLock(settings.db_url.removeprefix("sqlite:///"))
    lock.acquire()
    collector = PipelinedCollector(replace(settings, pipeline=True), client=fake_redis)
    try:
        with pytest.raises(AlreadyRunning, match=f"another collector \\(pid {os.getpid()} "):
            collector.start()
    finally:
        lock.release()
    assert collector.writer.proc is not None and collector.writer.proc.returncode == 1
    assert fake_redis.xlen(queue) == 1 and not fake_redis.exists(f"{queue}:dead")


def test_a_dead_writer_ends_the_collector_before_it_reads_more(piped, fake_redis, queue) -> None:
    emitter = Emitter(queue=queue, client=fake_redis)
    emitter.emit({"x": 1}, key="first")
    assert drain(piped) == 1
    assert piped.writer.proc is not None
    os.kill(piped.writer.proc.pid, signal.SIGKILL)
    piped.writer.proc.wait()
    emitter.emit({"x": 2}, key="second")
    ((_, fields),) = fake_redis.xrange(queue)
    second = fields[b"m"]
    with pytest.raises(CommandFailed, match=r"the writer process ended \(killed by SIGKILL\)"):
        piped.run_once()
    assert fake_redis.xpending(queue, "collector")["pending"] == 0
    assert [f[b"m"] for _, f in fake_redis.xrange(queue)] == [second]  # unread, for the next
    assert piped.counters.stored == 1


def test_no_secret_reaches_the_writers_argv_or_environment(
    settings, fake_redis, monkeypatch
) -> None:
    secret = "s3cret-Pw9"
    monkeypatch.setenv("COLLECTOR_REDIS_URL", f"redis://:{secret}@127.0.0.1:1/0")
    given_ = replace(settings, redis_url=f"redis://:{secret}@127.0.0.1:1/0", pipeline=True)
    collector = PipelinedCollector(given_, client=fake_redis)
    collector.start()
    try:
        assert collector.writer.proc is not None
        pid = collector.writer.proc.pid
        for part in ("cmdline", "environ"):
            with open(f"/proc/{pid}/{part}", "rb") as seen:
                assert secret.encode() not in seen.read()
    finally:
        collector.close()
    assert collector.writer.proc.returncode == 0


@pytest.mark.parametrize("argv", [[], ["7"], ["x", "1"], ["0", str(os.getpid())]])
def test_the_writer_started_by_hand_says_so_in_one_line(argv) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "collector.pipeline_writer", *argv],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == RET_CONFIG
    assert done.stderr == "collector.pipeline_writer is started by `collector run --pipeline`\n"


@pytest.mark.parametrize("pipelined", [False, True])
def test_a_record_the_database_refuses_is_dead_lettered_alike_in_both_modes(
    settings, fake_redis, queue, pipelined
) -> None:
    given_ = replace(settings, pipeline=pipelined)
    collector = (PipelinedCollector if pipelined else Collector)(given_, client=fake_redis)
    collector.start()
    emitter = Emitter(queue=queue, client=fake_redis)
    emitter.emit({"x": 1}, key="int")
    emitter.emit({"x": "text"}, key="text")
    try:
        assert drain(collector) == 2
    finally:
        collector.close()
    assert dead_reasons(fake_redis, queue) == [REFUSED]
    assert [r["_id"] for r in rows(settings.db_url, "results")] == ["int"]
    assert (collector.counters.stored, collector.counters.dead) == (1, 1)
    assert fake_redis.xpending(queue, "collector")["pending"] == 0


def test_a_sharded_queue_drains_pipelined_with_a_batch_in_flight_per_stream(
    settings, fake_redis, queue
) -> None:
    given_ = replace(settings, shards=3, batch_size=25, pipeline=True)
    collector = PipelinedCollector(given_, client=fake_redis)
    collector.start()
    emitter = Emitter(queue=queue, client=fake_redis, shards=3)
    try:
        for i in range(400):
            emitter.emit({"i": i}, key=f"k{i}")
        assert drain(collector) == 400
    finally:
        collector.close()
    assert sorted(r["_id"] for r in rows(settings.db_url, "results")) == sorted(
        f"k{i}" for i in range(400)
    )
    assert collector.counters.stored == 400
    for n in range(3):
        assert fake_redis.xpending(f"{queue}:{{{n}}}", "collector")["pending"] == 0


def test_an_idle_collector_notices_its_writer_died(piped) -> None:
    assert piped.run_once() == 0
    assert piped.writer.proc is not None
    os.kill(piped.writer.proc.pid, signal.SIGKILL)
    piped.writer.proc.wait()
    with pytest.raises(CommandFailed, match=r"the writer process ended \(killed by SIGKILL\)"):
        piped.run_once()  # the queue is empty: no batch meets the dead writer


POISON = b"\xc1 not msgpack"


def test_a_poison_entry_is_dead_lettered_and_acked_only_once_its_batch_committed(
    piped, settings, fake_redis, queue
) -> None:
    """The writer decodes; an entry it cannot decode becomes a dead letter with its reason,
    written by the reader, then acknowledged, only after the batch's transaction committed:
    while the database is locked, neither happens."""
    emitter = Emitter(queue=queue, client=fake_redis)
    emitter.emit({"x": 1}, key="before")
    fake_redis.xadd(queue, {"m": POISON})
    emitter.emit({"x": 2}, key="after")
    held = sqlite3.connect(settings.db_url.removeprefix("sqlite:///"))
    held.execute("BEGIN EXCLUSIVE")  # the writer waits out its busy timeout, then fails
    try:
        with pytest.raises(DatabaseUnavailable, match="locked"):
            piped.run_once()
        assert not fake_redis.exists(f"{queue}:dead")
        assert fake_redis.xpending(queue, "collector")["pending"] == 3
    finally:
        held.rollback()
        held.close()
    piped.run_once()  # the writer is told to retry: it commits, and the reader finishes
    (reason,) = dead_reasons(fake_redis, queue)
    assert reason.startswith("not valid msgpack")
    ((_, letter),) = fake_redis.xrange(f"{queue}:dead")
    assert letter[b"m"] == POISON
    assert sorted(r["_id"] for r in rows(settings.db_url, "results")) == ["after", "before"]
    assert fake_redis.xpending(queue, "collector")["pending"] == 0
    assert fake_redis.xlen(queue) == 0
    assert (piped.counters.records, piped.counters.stored, piped.counters.dead) == (3, 2, 1)


def test_the_writer_killed_holding_undecoded_batches_leaves_them_pending_for_the_next_start(
    settings, fake_redis, queue
) -> None:
    """SIGKILL of a writer that holds a handed batch, poison entry included, not yet decoded:
    nothing is acknowledged or dead-lettered; the next collector stores every record once
    and dead-letters the poison once."""
    emitter = Emitter(queue=queue, client=fake_redis)
    for i in range(3):
        emitter.emit({"i": i}, key=f"a{i}")
    fake_redis.xadd(queue, {"m": POISON})
    for i in range(4):
        emitter.emit({"i": i}, key=f"b{i}")
    small = replace(settings, batch_size=4, pipeline=True)
    collector = PipelinedCollector(small, client=fake_redis)
    collector.start()
    assert collector.writer.proc is not None
    writer = collector.writer.proc
    os.kill(writer.pid, signal.SIGSTOP)  # it takes in what it is handed, and decodes none
    kill = threading.Timer(0.5, os.kill, (writer.pid, signal.SIGKILL))
    try:
        assert collector.run_once() == 4  # handed; a full batch: the next read is allowed
        kill.start()  # while the reader waits, two batches in flight, for news never sent
        with pytest.raises(CommandFailed, match=r"the writer process ended \(killed by SIGKILL"):
            collector.run_once()
    finally:
        kill.cancel()
        if writer.poll() is None:  # the reader reaps it once it has seen it end
            writer.kill()
        collector.close()
    assert len(collector._handed) == 2
    assert not fake_redis.exists(f"{queue}:dead")
    assert fake_redis.xpending(queue, "collector")["pending"] == 8
    again = PipelinedCollector(small, client=fake_redis)
    again.start()
    try:
        assert drain(again) == 8
    finally:
        again.close()
    ids = [r["_id"] for r in rows(settings.db_url, "results")]
    assert sorted(ids) == [*(f"a{i}" for i in range(3)), *(f"b{i}" for i in range(4))]
    (reason,) = dead_reasons(fake_redis, queue)
    assert reason.startswith("not valid msgpack")
    assert fake_redis.xpending(queue, "collector")["pending"] == 0


@pytest.mark.parametrize("pipelined", [False, True])
def test_dead_letters_follow_the_queue_alike_in_both_modes(
    settings, fake_redis, queue, pipelined
) -> None:
    """Those refused before decoding (the reader's), by decoding (the writer's, pipelined) in
    the entries' order, then those the database refused."""
    emitter = Emitter(queue=queue, client=fake_redis)
    emitter.emit({"x": 1}, key="int")
    fake_redis.xadd(queue, {"m": POISON})
    fake_redis.xadd(queue, {"other": b"field"})
    emitter.emit({"x": "text"}, key="text")
    fake_redis.xadd(queue, {"m": b"\x93\x01\x02\x03"})
    given_ = replace(settings, pipeline=pipelined)
    collector = (PipelinedCollector if pipelined else Collector)(given_, client=fake_redis)
    collector.start()
    try:
        assert drain(collector) == 5
    finally:
        collector.close()
    reasons = dead_reasons(fake_redis, queue)
    assert [r.split(":")[0][:17] for r in reasons] == [
        "not valid msgpack", "stream entry has ", "record is a msgpa", "column 'x' holds "
    ]  # fmt: skip
    assert reasons[-1] == REFUSED
    assert (collector.counters.records, collector.counters.dead) == (5, 4)
