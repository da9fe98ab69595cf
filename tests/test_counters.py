"""Stored means committed: the counters, ``collector_records_total{outcome="stored"}`` and the
count ``collector serve`` closes with equal the rows in the table, even when Redis fails at the
acknowledgement; and the daemon writes through the sink port, whatever implements it."""

from __future__ import annotations

import sys
import threading
from dataclasses import replace

import pytest
import redis

from collector.daemon import Collector
from collector.pipeline import PipelinedCollector
from collector.reader import StreamReader
from collector.service import run_collector
from collector.stream import Stream
from tests.helpers import rows
from workers import Emitter
from workers.record import Record

RECORDS, BATCH = 110, 10


def fail_first_finish(monkeypatch) -> list[int]:
    """Make the first acknowledgement meet a Redis outage; returns the entries of each call."""
    real, calls = Stream.finish, []

    def finish(self, ids, dead):
        calls.append(len(ids))
        if len(calls) == 1:
            raise redis.ConnectionError("redis went away at the acknowledgement")
        return real(self, ids, dead)

    monkeypatch.setattr(Stream, "finish", finish)
    return calls


def emit_all(client, queue: str) -> None:
    emitter = Emitter(queue=queue, client=client)
    for i in range(RECORDS):
        emitter.emit({"i": i}, key=f"k{i}")


def test_a_batch_committed_before_a_failed_ack_is_counted_once(settings, fake_redis, monkeypatch):
    metrics_module = pytest.importorskip("collector.metrics")
    emit_all(fake_redis, settings.queue)
    metrics = metrics_module.Metrics(fake_redis, settings.queue)
    collector = Collector(replace(settings, batch_size=BATCH), client=fake_redis, observer=metrics)
    calls = fail_first_finish(monkeypatch)
    collector.start()
    with pytest.raises(redis.ConnectionError):
        collector.run_once()  # committed, then the acknowledgement failed
    assert collector.counters.stored == BATCH == len(rows(settings.db_url, "results"))
    while collector.run_once():
        pass
    collector.close()
    table = len(rows(settings.db_url, "results"))
    assert table == RECORDS and calls[:2] == [BATCH, BATCH]  # the same batch acknowledged again
    assert collector.counters.stored == table
    assert collector.counters.records == RECORDS and collector.counters.batches == RECORDS // BATCH
    get = metrics.registry.get_sample_value
    assert get("collector_records_total", {"outcome": "stored"}) == table
    assert get("collector_batches_total") == RECORDS // BATCH
    assert fake_redis.xpending(settings.queue, "collector")["pending"] == 0


def test_a_pipelined_collector_counts_a_batch_once_across_a_failed_ack(
    settings, fake_redis, monkeypatch
) -> None:
    """With --pipeline the writer process commits and the reader acknowledges: a batch whose
    acknowledgement failed is acknowledged again on the next pass, and counted once."""
    emit_all(fake_redis, settings.queue)
    calls = fail_first_finish(monkeypatch)
    piped = replace(settings, batch_size=BATCH, pipeline=True)
    collector = PipelinedCollector(piped, client=fake_redis)
    collector.start()
    failed = 0
    try:
        for _ in range(10 * RECORDS):
            try:
                if not collector.run_once() and not collector._handed:
                    break
            except redis.ConnectionError:
                failed += 1
                # the batch whose acknowledgement failed is counted; the writer may already
                # have committed the next one, whose news the reader has not taken yet
                assert BATCH <= collector.counters.stored <= len(rows(settings.db_url, "results"))
    finally:
        collector.close()
    assert failed == 1 and calls[:2] == [BATCH, BATCH]
    assert collector.counters.stored == len(rows(settings.db_url, "results")) == RECORDS
    assert (collector.counters.records, collector.counters.batches) == (RECORDS, RECORDS // BATCH)
    assert fake_redis.xpending(settings.queue, "collector")["pending"] == 0


def test_the_count_serve_closes_with_equals_the_rows(settings, fake_redis, monkeypatch) -> None:
    """``collector serve``'s closing line prints ``run_collector``'s counters."""
    emit_all(fake_redis, settings.queue)
    fail_first_finish(monkeypatch)
    run_module = sys.modules[run_collector.__module__]  # (collector.cli.run is also a command)
    monkeypatch.setattr(run_module, "connect", lambda _url, _stop: fake_redis)
    monkeypatch.setattr("collector.daemon.Backoff.next", lambda self: 0.01)
    stop, done = threading.Event(), []
    thread = threading.Thread(
        target=lambda: done.append(run_collector(replace(settings, batch_size=BATCH), stop))
    )
    thread.start()
    try:
        for _ in range(500):
            if fake_redis.xlen(settings.queue) == 0:
                break
            threading.Event().wait(0.02)
    finally:
        stop.set()
        thread.join(10)
    (counters,) = done
    assert counters.stored == len(rows(settings.db_url, "results")) == RECORDS


class HalfSink:
    """A sink that takes even positions and refuses odd ones (the port, nothing else)."""

    def __init__(self) -> None:
        self.added, self.kept, self.closed = 0, [], False

    def write(self, records: list[Record]) -> list[tuple[int, str]]:
        self.kept += records[::2]
        self.added = len(records[::2])
        return [(i, "odd one out") for i in range(1, len(records), 2)]

    def close(self) -> None:
        self.closed = True


def test_the_daemon_writes_through_any_sink_and_reader(settings, fake_redis) -> None:
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    for i in range(6):
        emitter.emit({"i": i}, key=f"k{i}")
    sink = HalfSink()
    reader = StreamReader(settings, client=fake_redis)  # one stream, without the composition
    collector = Collector(settings, reader=reader, sink=sink)
    collector.start()
    assert collector.run_once() == 6
    collector.close()
    assert [r.id for r in sink.kept] == ["k0", "k2", "k4"] and sink.closed
    assert (collector.counters.stored, collector.counters.dead) == (3, 3)
    letters = fake_redis.xrange(f"{settings.queue}:dead")
    assert [f[b"reason"] for _, f in letters] == [b"odd one out"] * 3
    assert fake_redis.xlen(settings.queue) == 0
