"""Fault 3 on MariaDB: a private server stopped while records keep coming, then restarted, and
one SIGKILLed while the collector writes: every record stored exactly once, nothing acknowledged
before its commit, the collector backs off, says so in ``status``, and recovers."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import msgpack
import pytest
import redis
import sqlalchemy as sa

from collector.errors import RET_DATABASE
from faults.mariadb import MariaDbServer
from faults.servers import (
    drained,
    producer,
    start_collector,
    stored_ids,
    wait_for_rows,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.mysql]
RETRY = re.compile(r"database unavailable: .*; retrying in ([0-9.]+) s \(attempt (\d+)\)")


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDbServer]:
    """One private server for the module (initialised once); a test may stop or kill it."""
    server = MariaDbServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def private_mysql_url(mariadb: MariaDbServer) -> str:
    """A fresh database in the private server."""
    mariadb.start_if_stopped()
    name = f"rc_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(mariadb.url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    admin.dispose()
    return mariadb.url.rsplit("/", 1)[0] + f"/{name}"


def queued_ids(client: redis.Redis, queue: str) -> set[str]:
    """The ids of the records still in the stream (acknowledged ones are deleted from it)."""
    return {msgpack.unpackb(f[b"m"])["id"] for _mid, f in client.xrange(queue)}


def status(redis_url: str, db_url: str, queue: str) -> tuple[int, dict]:
    """``collector status --json``: its exit code and its report."""
    done = subprocess.run(
        [sys.executable, "-m", "collector", "status", "--json", "--redis-url", redis_url,
         "--db-url", db_url, "--queue", queue],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def test_mariadb_stopped_while_records_come_then_restarted(
    redis_server, mariadb, private_mysql_url, queue
) -> None:
    url, db = redis_server.url(), private_mysql_url
    client = redis.Redis.from_url(url)
    daemon = start_collector(url, db, queue)
    try:
        first = producer(url, queue, "before", 300)
        assert first.stop(None) == 0, first.err
        wait_for_rows(db, {f"before-{i}" for i in range(300)}, timeout=60)
        wait_until(lambda: drained(client, queue), 30, "the first records acknowledged")
        mariadb.stop()
        during = producer(url, queue, "during", 500)
        assert during.stop(None) == 0, during.err
        time.sleep(4.0)  # the collector keeps trying
        assert queued_ids(client, queue) == {f"during-{i}" for i in range(500)}  # none acked
        code, report = status(url, db, queue)
        assert (code, report["queue"], report["tables"]) == (RET_DATABASE, 500, {})
        assert report["database_error"].startswith("database unavailable: (2003, ")
        failing = report["failing"]
        assert list(failing) == ["c1"] and failing["c1"]["attempts"] >= 3
        assert failing["c1"]["error"].startswith("database unavailable: ")
        mariadb.start()
        expected = {f"{who}-{i}" for who, n in (("before", 300), ("during", 500)) for i in range(n)}
        wait_for_rows(db, expected, timeout=90)
        wait_until(lambda: drained(client, queue), 30, "the stream to be drained")
        code, report = status(url, db, queue)
        assert (code, report["failing"], report["tables"]) == (0, {}, {"results": 800})
        assert daemon.poll() is None
    finally:
        mariadb.start_if_stopped()
        client.close()
        assert daemon.stop() == 0, daemon.err
    retries = [(float(d), int(n)) for d, n in RETRY.findall(daemon.err)]
    assert len(retries) >= 3
    assert retries == [(min(10.0, 0.1 * 2**k), k + 1) for k in range(len(retries))]  # backs off
    assert "recovered after" in daemon.err


def test_mariadb_killed_while_the_collector_writes(
    redis_server, mariadb, private_mysql_url, queue
) -> None:
    url, db = redis_server.url(), private_mysql_url
    client = redis.Redis.from_url(url)
    daemon = start_collector(url, db, queue)
    try:
        load = producer(url, queue, "p", 3000, pause=0.0005)
        for at_least in (1, 1200):  # two crashes, each while batches are being written
            wait_until(lambda n=at_least: len(stored_ids(db)) >= n, 60, "rows", every=0.05)
            mariadb.stop(signal.SIGKILL)
            time.sleep(1.0)
            mariadb.start()
        assert load.stop(None, timeout=90) == 0, load.err
        wait_for_rows(db, {f"p-{i}" for i in range(3000)}, timeout=120)
        wait_until(lambda: drained(client, queue), 30, "the stream to be drained")
        assert daemon.poll() is None
    finally:
        mariadb.start_if_stopped()
        client.close()
        assert daemon.stop() == 0, daemon.err
    assert "database unavailable" in daemon.err
