"""End to end on the machine's Redis: producer processes, the collector command, a database."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
import sqlalchemy as sa

from tests.helpers import (
    COLLECTOR,
    REAL_REDIS_URL,
    expected_keys,
    start_collector,
    start_producers,
    stop,
    wait_ready,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def stored(db_url: str) -> list[tuple[str, str, int, float]]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("data"):
                return []
            return [tuple(r) for r in conn.execute(sa.text(
                'SELECT _id, producer, i, "K" FROM data ORDER BY _id'))]  # fmt: skip
    finally:
        engine.dispose()


def check_exact(db_url: str, n: int, count: int) -> None:
    got = stored(db_url)
    assert len(got) == n * count
    assert {r[0] for r in got} == expected_keys(n, count)
    assert all(r[0] == f"{r[1]}-{r[2]}" and r[3] == r[2] * 0.5 for r in got)


def run_producers_into(db_url: str, queue: str, real_redis, n: int = 4, count: int = 2500):
    collector = start_collector(REAL_REDIS_URL, db_url, queue)
    wait_ready(collector)
    producers = start_producers(n, count, REAL_REDIS_URL, queue)
    assert all(p.wait(120) == 0 for p in producers)
    wait_until(lambda: len(stored(db_url)) == n * count)
    assert stop(collector) == 0
    log = collector.log_path.read_text()
    assert "collector stopped" in log, log
    check_exact(db_url, n, count)
    assert real_redis.xlen(queue) == 0
    assert real_redis.xpending(queue, "collector")["pending"] == 0


def test_four_producers_into_sqlite(real_redis, queue, sqlite_url) -> None:
    run_producers_into(sqlite_url, queue, real_redis)


@pytest.mark.postgres
def test_four_producers_into_postgres(real_redis, queue, pg_url) -> None:
    run_producers_into(pg_url, queue, real_redis)


def test_status_json_reports_queue_dead_and_tables(real_redis, queue, sqlite_url) -> None:
    real_redis.xadd(queue, {"m": b"not msgpack \xc1"})
    for p in start_producers(1, 10, REAL_REDIS_URL, queue):
        assert p.wait(60) == 0
    collector = start_collector(REAL_REDIS_URL, sqlite_url, queue)
    wait_ready(collector)
    wait_until(lambda: len(stored(sqlite_url)) == 10)
    assert stop(collector) == 0
    real_redis.xadd(queue, {"m": b"waiting"})
    out = subprocess.run(
        [COLLECTOR, "status", "--json", "--redis-url", REAL_REDIS_URL, "--db-url", sqlite_url,
         "--queue", queue],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    info = json.loads(out)
    assert (info["queue"], info["pending"], info["dead"]) == (1, 0, 1)
    assert info["tables"] == {"data": 10}


def test_second_signal_exits_at_once_without_losing_records(real_redis, queue, sqlite_url):
    for p in start_producers(1, 3000, REAL_REDIS_URL, queue):
        assert p.wait(60) == 0
    collector = start_collector(REAL_REDIS_URL, sqlite_url, queue, "--batch-size", "100")
    wait_ready(collector)
    wait_until(lambda: len(stored(sqlite_url)) > 0, interval=0.01)
    collector.send_signal(signal.SIGTERM)
    code = stop(collector, signal.SIGTERM)
    assert code in (0, 128 + signal.SIGTERM)  # 0 only if the first signal finished first
    done = len(stored(sqlite_url))
    left = real_redis.xlen(queue)
    assert done + left == 3000  # every record is either stored or still in the stream
    collector = start_collector(REAL_REDIS_URL, sqlite_url, queue)
    wait_ready(collector)
    wait_until(lambda: len(stored(sqlite_url)) == 3000)
    assert stop(collector) == 0
    check_exact(sqlite_url, 1, 3000)
