"""Fault 3: the database becomes unavailable mid-run (SQLite locked by another process for 3 s
or more;
a private PostgreSQL cluster stopped and restarted): nothing is lost, the backlog drains after."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
import sqlalchemy as sa

from faults.servers import (
    drained,
    producer,
    python,
    start_collector,
    stored_ids,
    wait_for_rows,
    wait_until,
)

pytestmark = pytest.mark.slow

HOLD_LOCK = """
import pathlib, sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
pathlib.Path(sys.argv[2]).touch()
release = pathlib.Path(sys.argv[3])
deadline = time.monotonic() + 300
while not release.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
conn.execute("COMMIT")
"""


def test_sqlite_locked_by_another_process_for_3_seconds_or_more(
    redis_server, sqlite_url, queue, tmp_path, mode
) -> None:
    url = redis_server.url()
    daemon = start_collector(url, sqlite_url, queue)
    try:
        first = producer(url, queue, "before", 300)
        assert first.stop(None) == 0, first.err
        wait_for_rows(sqlite_url, {f"before-{i}" for i in range(300)}, timeout=60)
        marker, release = tmp_path / "locked", tmp_path / "release"
        db_path = sqlite_url.removeprefix("sqlite:///")
        locker = python(HOLD_LOCK, db_path, str(marker), str(release))
        try:
            wait_until(marker.exists, 30, "the exclusive lock")
            locked_at = time.monotonic()
            second = producer(url, queue, "during", 600)
            assert second.stop(None) == 0, second.err
            time.sleep(max(0.0, locked_at + 3 - time.monotonic()))
            assert len(stored_ids(sqlite_url)) == 300  # nothing got in while the lock was held
        finally:
            release.touch()  # the lock ends when the test says so, however slow the machine
            assert locker.stop(None) == 0, locker.err
        expected = {f"{who}-{i}" for who, n in (("before", 300), ("during", 600)) for i in range(n)}
        wait_for_rows(sqlite_url, expected, timeout=60)
        client = redis.Redis.from_url(url)
        wait_until(lambda: drained(client, queue), 30, "the stream to be drained")
        client.close()
        assert daemon.poll() is None
    finally:
        assert daemon.stop() == 0, daemon.err


@pytest.fixture
def private_pg_url(pg_cluster):
    """A fresh database in the private cluster."""
    name = f"rc_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return pg_cluster.url.rsplit("/", 1)[0] + f"/{name}"


def test_postgresql_stopped_and_restarted_mid_run(
    redis_server, pg_cluster, private_pg_url, queue, mode
) -> None:
    url = redis_server.url()
    daemon = start_collector(url, private_pg_url, queue)
    try:
        load = producer(url, queue, "p", 2000, pause=0.001)
        wait_until(lambda: len(stored_ids(private_pg_url)) > 0, 30, "the first rows", every=0.2)
        pg_cluster.stop("fast")
        time.sleep(2.0)
        pg_cluster.start()
        assert load.stop(None, timeout=60) == 0, load.err
        wait_for_rows(private_pg_url, {f"p-{i}" for i in range(2000)}, timeout=90)
        client = redis.Redis.from_url(url)
        wait_until(lambda: drained(client, queue), 30, "the stream to be drained")
        client.close()
        assert daemon.poll() is None
    finally:
        pg_cluster.start_if_stopped()
        assert daemon.stop() == 0, daemon.err
    assert "database unavailable" in daemon.err
