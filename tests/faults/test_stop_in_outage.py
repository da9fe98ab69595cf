"""SIGTERM while the database is down (a private PostgreSQL cluster stopped): the collector, in
either mode, stops in order within its backoff, its writer process too, and a collector started
after the database is back stores every record exactly once."""

from __future__ import annotations

import time

import pytest
import redis

from faults.servers import drained, gone, producer, start_collector, stored_ids, wait_until
from faults.servers import writer_pid as writer_of
from faults.test_database_outage import private_pg_url  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


def test_sigterm_in_a_database_outage_stops_in_order_and_loses_nothing(
    redis_server,
    pg_cluster,
    private_pg_url,  # noqa: F811 - the fixture imported above
    queue,
    mode,
) -> None:
    url = redis_server.url()
    daemon = start_collector(url, private_pg_url, queue)
    writer = writer_of(daemon) if mode == "pipeline" else None
    try:
        load = producer(url, queue, "p", 1000, pause=0.001)
        wait_until(lambda: len(stored_ids(private_pg_url)) > 0, 30, "the first rows", every=0.2)
        pg_cluster.stop("fast")
        assert load.stop(None, timeout=60) == 0, load.err
        daemon.wait_for("database unavailable")
        started = time.monotonic()
        assert daemon.stop(timeout=40) == 0, daemon.err
        assert time.monotonic() - started < 35
        assert writer is None or gone(writer)
        assert "Traceback" not in daemon.err
    finally:
        pg_cluster.start_if_stopped()
    again = start_collector(url, private_pg_url, queue)  # the same consumer: a restart
    try:
        client = redis.Redis.from_url(url)
        wait_until(lambda: drained(client, queue), 60, "the stream to be drained")
        client.close()
    finally:
        assert again.stop() == 0, again.err
    ids = stored_ids(private_pg_url)
    assert sorted(ids) == sorted(f"p-{i}" for i in range(1000))
