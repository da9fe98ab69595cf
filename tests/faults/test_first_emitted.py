"""Two collectors on PostgreSQL: the reader of a key's first record dies before its commit, and
its peer commits the key's second record first. When the peer claims and stores the first
record, the row holds it: under one key the first emitted row stays."""

from __future__ import annotations

import pytest
import redis
import sqlalchemy as sa

from faults.servers import drained, start_collector, wait_until
from workers import Emitter

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def row(db_url: str) -> tuple | None:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("results"):
                return None
            return conn.exec_driver_sql('SELECT "_id", "x" FROM "results"').first()
    finally:
        engine.dispose()


def test_the_first_record_redelivered_after_its_peer_stored_the_second_wins(
    redis_server, pg_url, queue, mode
) -> None:
    url = redis_server.url()
    client = redis.Redis.from_url(url)
    client.xgroup_create(queue, "collector", id="0", mkstream=True)
    emitter = Emitter(queue=queue, client=client)
    emitter.emit({"x": 1}, key="k")
    # a collector that read the first record and died before its commit
    (_stream, read), *_ = client.xreadgroup("collector", "ghost", {queue: ">"}, count=1)
    assert len(read) == 1
    emitter.emit({"x": 2}, key="k")
    peer = start_collector(url, pg_url, queue, "peer", "--claim-idle", "1")
    try:
        wait_until(lambda: row(pg_url) is not None, 60, "the second record stored")
        wait_until(lambda: drained(client, queue), 60, "the ghost's record claimed and stored")
        assert tuple(row(pg_url)) == ("k", 1)
    finally:
        assert peer.stop() == 0, peer.err
        emitter.close()
        client.close()
