"""A table locked by someone else (``LOCK TABLES t WRITE`` on MariaDB, ``LOCK TABLE`` on
PostgreSQL) makes the collector wait a bounded time, then back off as in a database outage with
the reason in ``collector status``; once the lock is released every record is stored once."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from collector import db
from collector.daemon import Collector
from collector.settings import Settings
from collector.status import gather
from tests.helpers import REAL_REDIS_URL, dead_reasons, rows, wait_until
from workers.emitter import Emitter

LOCKS = {
    "mysql_url": ('LOCK TABLES "results" WRITE', "UNLOCK TABLES"),
    "pg_url": ('BEGIN; LOCK TABLE "results" IN ACCESS EXCLUSIVE MODE', "COMMIT"),
}
TIMED_OUT = {
    "mysql_url": "Lock wait timeout exceeded",
    "pg_url": "canceling statement due to lock timeout",
}


@pytest.mark.redis
@pytest.mark.parametrize(
    "db_fixture",
    [
        pytest.param("mysql_url", marks=pytest.mark.mysql),
        pytest.param("pg_url", marks=pytest.mark.postgres),
    ],
)
def test_a_locked_table_is_a_visible_bounded_wait(
    request, db_fixture, real_redis, queue, monkeypatch
) -> None:
    monkeypatch.setattr(db, "LOCK_WAIT_SECONDS", 1)
    url = request.getfixturevalue(db_fixture)
    settings = Settings(redis_url=REAL_REDIS_URL, db_url=url, queue=queue, max_wait=0.05,
                        consumer="locked")  # fmt: skip
    emitter = Emitter(queue=queue, client=real_redis)
    emitter.emit({"n": 0}, table="results", key="k0")
    daemon = Collector(settings)
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,))
    runner.start()
    holder_engine = sa.create_engine(url)
    holder = holder_engine.connect()
    try:
        wait_until(lambda: daemon.counters.stored == 1, what="the first row")
        take, release = LOCKS[db_fixture]
        holder.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
        for statement in take.split("; "):
            holder.exec_driver_sql(statement)
        for n in range(1, 51):
            emitter.emit({"n": n}, table="results", key=f"k{n}")

        def failing() -> bool:
            found = gather(REAL_REDIS_URL, url, queue)
            error = found["failing"].get("locked", {}).get("error", "")
            return TIMED_OUT[db_fixture] in error and "database_error" in found

        wait_until(failing, timeout=120, interval=0.5, what="the lock wait shown in status")
        found = gather(REAL_REDIS_URL, url, queue)
        assert found["failing"]["locked"]["error"].startswith("database unavailable: ")
        assert found["database_error"].startswith("database unavailable: ")
        assert TIMED_OUT[db_fixture] in found["database_error"]
        holder.exec_driver_sql(release)
        wait_until(lambda: len(rows(url, "results")) == 51, timeout=120, what="every row")
        wait_until(lambda: "locked" not in gather(REAL_REDIS_URL, url, queue)["failing"],
                   what="the failure cleared")  # fmt: skip
    finally:
        holder.close()
        holder_engine.dispose()
        stop.set()
        runner.join(60)
    stored = rows(url, "results")
    assert sorted(r["n"] for r in stored) == list(range(51))
    assert sorted(r["_id"] for r in stored) == sorted(f"k{n}" for n in range(51))
    assert dead_reasons(real_redis, queue) == []
    assert daemon.counters.stored == 51
