"""Fault 4: two collectors share one consumer group on PostgreSQL or MariaDB; one is killed
mid-run and the other takes over its pending records. No record lost, none stored twice."""

from __future__ import annotations

import signal
import time

import pytest
import redis

from faults.servers import drained, producer, start_collector, wait_for_rows, wait_until

pytestmark = pytest.mark.slow
PRODUCERS, EACH, GHOST = 4, 1500, 100


def consumers(client: redis.Redis, queue: str) -> set[bytes]:
    return {c["name"] for c in client.xinfo_consumers(queue, "collector")}


@pytest.mark.parametrize(
    "database",
    [pytest.param("pg_url", marks=pytest.mark.postgres),
     pytest.param("mysql_url", marks=pytest.mark.mysql)],
)  # fmt: skip
def test_two_collectors_one_killed_mid_run(request, redis_server, database, queue) -> None:
    db_url = request.getfixturevalue(database)  # the database both peers write to
    url = redis_server.url()
    client = redis.Redis.from_url(url)
    client.xgroup_create(queue, "collector", id="0", mkstream=True)
    first = producer(url, queue, "early", GHOST)
    assert first.stop(None) == 0, first.err
    # a peer that read a batch and died before acknowledging it
    ghost = client.xreadgroup("collector", "ghost", {queue: ">"}, count=GHOST)
    assert len(ghost[0][1]) == GHOST
    producers = [producer(url, queue, f"p{k}", EACH, pause=0.001) for k in range(PRODUCERS)]
    peers = [start_collector(url, db_url, queue, name, "--claim-idle", "1") for name in "ab"]
    try:
        wait_until(lambda: consumers(client, queue) >= {b"a", b"b"}, 30, "both peers reading")
        time.sleep(0.5)
        assert peers[0].stop(signal.SIGKILL) == -signal.SIGKILL
        for proc in producers:
            assert proc.stop(None, timeout=60) == 0, proc.err
        expected = {f"p{k}-{i}" for k in range(PRODUCERS) for i in range(EACH)}
        expected |= {f"early-{i}" for i in range(GHOST)}
        wait_for_rows(db_url, expected, timeout=90)
        wait_until(lambda: drained(client, queue), 30, "the stream to be drained")
        pending = {c["name"]: c["pending"] for c in client.xinfo_consumers(queue, "collector")}
        assert pending == {b"ghost": 0, b"a": 0, b"b": 0}
    finally:
        assert peers[1].stop() == 0, peers[1].err
        client.close()
