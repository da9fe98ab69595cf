"""A private MariaDB SIGKILLed while the collector widens a big int column to DOUBLE (the ALTER
copying the table), then restarted: the batch is retried, every stored int is still exact, the
widening is done once and the record that needed it stored once."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from collector.db import make_engine
from collector.errors import DatabaseUnavailable
from collector.store import Schema, Store
from faults.mariadb import MariaDbServer
from faults.servers import wait_until
from workers.record import Record

pytestmark = [pytest.mark.slow, pytest.mark.mysql]
ROWS = 400_000


@pytest.fixture
def server() -> Iterator[MariaDbServer]:
    server = MariaDbServer()
    server.start()
    yield server
    server.remove()


def copying(url: str) -> bool:
    """Whether an ALTER TABLE is running on the server."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            infos = conn.exec_driver_sql("SELECT INFO FROM information_schema.PROCESSLIST")
            return any(str(i).startswith("ALTER TABLE") for (i,) in infos)
    finally:
        engine.dispose()


def test_server_killed_during_a_widening_then_restarted(server) -> None:
    name = f"rc_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server.url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    admin.dispose()
    url = server.url.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    store = Store(engine, Schema())
    assert store.write([Record("r0", "w", {"x": 0})]) == []
    with engine.begin() as conn:
        fill = 'INSERT INTO "w" ("_id", "_ts", "_host", "_pid", "x") SELECT CONCAT(\'r\', seq), '
        conn.exec_driver_sql(f"{fill}NOW(6), 'h', 1, seq FROM seq_1_to_{ROWS}")
    outcome: list[object] = []

    def widen() -> None:
        try:
            outcome.append(store.write([Record("f", "w", {"x": 0.5})]))
        except DatabaseUnavailable as exc:
            outcome.append(exc)

    writer = threading.Thread(target=widen)
    writer.start()
    wait_until(lambda: copying(server.url), 30, "the ALTER TABLE to run", every=0.05)
    server.stop(signal.SIGKILL)
    writer.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], DatabaseUnavailable)
    server.start()
    for _ in range(20):
        try:
            refused = store.write([Record("f", "w", {"x": 0.5})])
            break
        except DatabaseUnavailable:
            time.sleep(0.5)
    assert refused == []
    engine.dispose()
    check = make_engine(url)
    with check.connect() as conn:
        kind = conn.exec_driver_sql(
            "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'w' AND COLUMN_NAME = 'x'"
        ).scalar()
        count, total, bad = conn.exec_driver_sql(
            'SELECT COUNT(*), SUM("x"), SUM("x" <> CAST(SUBSTRING("_id", 2) AS DOUBLE)) '
            'FROM "w" WHERE "_id" LIKE \'r%%\''
        ).one()
        f = conn.exec_driver_sql('SELECT "x" FROM "w" WHERE "_id" = \'f\'').all()
    check.dispose()
    assert (kind, count, int(total), int(bad), f) == (
        "double",
        ROWS + 1,
        ROWS * (ROWS + 1) // 2,
        0,
        [(0.5,)],
    )
