"""Large records while Redis is down: ``emit_many`` of 1,000 records of 270 kB spools them in
frames the spool reads back (batch entries are bounded in bytes), and once Redis returns every
id it returned is stored, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from collector.settings import Settings
from faults.servers import RedisServer, stored_ids
from tests.helpers import run_collector
from workers.emitter import Emitter
from workers.entry import MAX_ENTRY_BYTES
from workers.spool import Spool, parse

pytestmark = pytest.mark.slow
COUNT, SIZE = 1000, 270_000


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_emit_many_of_large_records_while_redis_is_down_stores_every_id(
    settings: Settings, tmp_path, db: str, request: pytest.FixtureRequest
) -> None:
    db_url = request.getfixturevalue("pg_url") if db == "postgres" else settings.db_url
    spool_dir = tmp_path / "big-spool"
    redis_server = RedisServer(tmp_path / "redis", "--appendonly", "no")  # 270 MB: no AOF fsync
    try:
        emit_while_down_then_store(redis_server, settings, db_url, spool_dir)
    finally:
        redis_server.stop()


def emit_while_down_then_store(
    redis_server: RedisServer, settings: Settings, db_url: str, spool_dir: Path
) -> None:
    emitter = Emitter(redis_server.url(), settings.queue, emit_timeout=0, spool_dir=spool_dir)
    ids = emitter.emit_many(({"i": i, "blob": "x" * SIZE} for i in range(COUNT)), table="big")
    assert len(set(ids)) == COUNT
    [path] = Spool(spool_dir).files()
    entries, skipped = parse(path.read_bytes())
    assert skipped == 0
    assert all(len(payload) <= MAX_ENTRY_BYTES + 64 * 1024 for _queue, payload in entries)
    redis_server.start()
    emitter.close()  # re-sends the spool, now that Redis is back
    assert Spool(spool_dir).files() == []
    assert list(spool_dir.iterdir()) == []  # nothing damaged, nothing kept aside
    on_server = dataclasses.replace(settings, redis_url=redis_server.url(), db_url=db_url)
    counters = run_collector(on_server)
    assert counters.dead == 0
    stored = stored_ids(db_url, "big")
    assert len(stored) == COUNT and set(stored) == set(ids)
