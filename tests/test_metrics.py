"""``collector run --metrics-port``: Prometheus text whose counts equal what was stored and
dead-lettered, scraped with prometheus-client's own parser while producers emit."""

from __future__ import annotations

import urllib.request

import pytest
import sqlalchemy as sa

from collector.daemon import Collector
from collector.errors import RET_CONFIG
from collector.metrics import Metrics
from tests.helpers import (
    REAL_REDIS_URL,
    collector,
    start_collector,
    start_producers,
    stop,
    wait_ready,
    wait_until,
)
from tests.webtools import free_port
from workers import Emitter

prometheus_parser = pytest.importorskip("prometheus_client.parser")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at /metrics, by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in prometheus_parser.text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.mark.redis
@pytest.mark.slow
def test_metrics_count_the_rows_stored_and_dead_letters_made(real_redis, queue, sqlite_url) -> None:
    port = free_port()
    proc = start_collector(REAL_REDIS_URL, sqlite_url, queue,
                           "--metrics-port", str(port), "--metrics-bind", "127.0.0.1")  # fmt: skip
    try:
        wait_ready(proc)
        producers = start_producers(3, 300, REAL_REDIS_URL, queue)
        real_redis.xadd(queue, {"m": b"\xc1 not msgpack"})  # a poisoned record
        seen_while_emitting = scrape(port)
        for p in producers:
            assert p.wait(60) == 0
        wait_until(lambda: value(scrape(port), "collector_records_total", outcome="stored") == 900)
        wait_until(lambda: value(scrape(port), "collector_backlog_records") == 0)
        samples = scrape(port)
    finally:
        assert stop(proc) == 0
    assert value(seen_while_emitting, "collector_up") == 1
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        rows = conn.scalar(sa.text("SELECT count(*) FROM data"))
    engine.dispose()
    assert rows == 900
    assert value(samples, "collector_records_total", outcome="stored") == rows
    assert value(samples, "collector_records_total", outcome="dead") == 1
    assert value(samples, "collector_dead_letters") == real_redis.xlen(f"{queue}:dead") == 1
    assert value(samples, "collector_pending_records") == 0
    assert value(samples, "collector_oldest_pending_age_seconds") == 0
    assert value(samples, "collector_oldest_record_age_seconds") == 0
    batches = value(samples, "collector_batches_total")
    assert batches is not None and batches >= 1
    assert value(samples, "collector_batch_seconds_count") == batches
    assert value(samples, "collector_store_errors_total", kind="database") == 0
    assert value(samples, "collector_store_errors_total", kind="redis") == 0
    assert value(samples, "collector_up") == 1


def test_observer_counts_batches_and_a_failing_database(fake_redis, settings) -> None:
    metrics = Metrics(fake_redis, settings.queue)
    daemon = Collector(settings, client=fake_redis, observer=metrics)
    emitter = Emitter(client=fake_redis, queue=settings.queue)
    for i in range(5):
        emitter.emit({"x": i}, table="t")
    fake_redis.xadd(settings.queue, {"m": b"junk"})
    daemon.run_once()
    get = metrics.registry.get_sample_value
    assert get("collector_records_total", {"outcome": "stored"}) == 5
    assert get("collector_records_total", {"outcome": "dead"}) == 1
    assert get("collector_batches_total") == 1
    assert get("collector_batch_seconds_count") == 1
    assert get("collector_dead_letters") == 1
    assert get("collector_backlog_records") == 0
    metrics.batch_failed("database")
    assert get("collector_up") == 0
    assert get("collector_store_errors_total", {"kind": "database"}) == 1
    daemon.close()


def test_oldest_pending_age_is_the_lag_in_time(fake_redis, settings) -> None:
    metrics = Metrics(fake_redis, settings.queue)
    now_ms = int(fake_redis.time()[0]) * 1000
    fake_redis.xgroup_create(settings.queue, "collector", id="0", mkstream=True)
    fake_redis.xadd(settings.queue, {"m": b"x"}, id=f"{now_ms - 30_000}-0")
    fake_redis.xreadgroup("collector", "c1", {settings.queue: ">"})
    get = metrics.registry.get_sample_value
    assert get("collector_pending_records") == 1
    assert 29 <= (get("collector_oldest_pending_age_seconds") or 0) <= 32
    assert 29 <= (get("collector_oldest_record_age_seconds") or 0) <= 32


@pytest.mark.parametrize("bad", ["nope", "70000", "-1"])
def test_a_bad_metrics_port_is_one_line_and_exit_2(bad: str) -> None:
    result = collector("run", "--metrics-port", bad)
    assert (result.returncode, result.stderr) == (
        RET_CONFIG,
        f"Error: --metrics-port must be a port number from 0 to 65535, got {bad!r}\n",
    )
