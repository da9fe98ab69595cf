"""Reading one batch ahead while a backlog is written: never further, never acknowledged early,
stored at a warm stop, left pending (not lost) when the database is down."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from collector.daemon import Collector
from collector.errors import DatabaseUnavailable
from tests.helpers import REAL_REDIS_URL, drain, rows
from workers import Emitter


def pending(client, queue: str) -> int:
    return int(client.xpending(queue, "collector")["pending"])


@pytest.fixture
def collector(settings, fake_redis, queue) -> Collector:
    emitter = Emitter(queue=queue, client=fake_redis)
    for i in range(5):
        emitter.emit({"i": i})  # one entry each
    c = Collector(replace(settings, batch_size=2), client=fake_redis)
    c.start()
    yield c
    c.close()


def wait_pending(collector: Collector, count: int) -> None:
    """Wait until the reader thread has taken the next batch (its entries are pending)."""
    deadline = time.monotonic() + 10
    while pending(collector.reader.client, collector.settings.queue) != count:
        assert time.monotonic() < deadline, "the batch read ahead never came"
        time.sleep(0.01)


def test_a_full_batch_reads_the_next_one_ahead_unacknowledged(collector, settings) -> None:
    collector.run_once()  # batch [0, 1] stored while [2, 3] is read ahead
    wait_pending(collector, 2)
    assert sorted(r["i"] for r in rows(settings.db_url, "results")) == [0, 1]
    assert pending(collector.reader.client, settings.queue) == 2  # read ahead, not acknowledged
    assert drain(collector) == 3
    assert sorted(r["i"] for r in rows(settings.db_url, "results")) == [0, 1, 2, 3, 4]
    assert pending(collector.reader.client, settings.queue) == 0


def test_close_stores_the_batch_read_ahead(collector, settings, fake_redis) -> None:
    collector.run_once()
    wait_pending(collector, 2)
    collector.close()
    assert sorted(r["i"] for r in rows(settings.db_url, "results")) == [0, 1, 2, 3]
    assert pending(fake_redis, settings.queue) == 0
    assert fake_redis.xlen(settings.queue) == 1  # the fifth was never read


def test_database_down_reads_at_most_one_batch_ahead(collector, settings, monkeypatch) -> None:
    collector.run_once()  # batch [0, 1] stored, [2, 3] read ahead
    wait_pending(collector, 2)
    real_write = collector.store.write

    def down(records):
        raise DatabaseUnavailable("down for the test")

    monkeypatch.setattr(collector.store, "write", down)
    for _ in range(3):
        with pytest.raises(DatabaseUnavailable):
            collector.run_once()
        wait_pending(collector, 3)  # [2, 3] retried, [4] read ahead, and nothing more
    monkeypatch.setattr(collector.store, "write", real_write)
    assert drain(collector) == 3
    assert sorted(r["i"] for r in rows(settings.db_url, "results")) == [0, 1, 2, 3, 4]
    assert pending(collector.reader.client, settings.queue) == 0


@pytest.mark.redis
def test_a_pool_of_one_connection_drains_without_reading_ahead(settings, real_redis) -> None:
    """``?max_connections=1``: a read ahead would hold the only connection while the batch
    before it is acknowledged ("Too many connections", again at every retry); none is made."""
    emitter = Emitter(queue=settings.queue, client=real_redis)
    for i in range(5):
        emitter.emit({"i": i})
    url = REAL_REDIS_URL + ("&" if "?" in REAL_REDIS_URL else "?") + "max_connections=1"
    c = Collector(replace(settings, batch_size=2, redis_url=url))
    c.start()
    try:
        assert drain(c) == 5
    finally:
        c.close()
    assert [r["i"] for r in rows(settings.db_url, "results", order="i")] == [0, 1, 2, 3, 4]
    assert (real_redis.xlen(settings.queue), pending(real_redis, settings.queue)) == (0, 0)
