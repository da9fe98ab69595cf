"""Sharded queues on a real local Redis Cluster (issue 15): 4 producers emit 20,000 records over
6 shards while 2 collectors write to PostgreSQL, one SIGKILLed mid-run; exactly the emitted ids
are stored, once each. A poison record on one shard is dead-lettered on that shard, and
``collector dead list`` shows it."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli import main
from faults.cluster import RedisCluster, running_cluster
from faults.servers import producer, start_collector, stored_ids, wait_for_rows, wait_until
from workers.cluster import client_from_url
from workers.shards import count_key, dead_name, shard_of, stream_name, streams

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
SHARDS, PRODUCERS, EACH = 6, 4, 5000


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    with running_cluster(tmp_path / "cluster") as started:
        yield started


def drained(client, queue: str) -> bool:
    """Every shard empty and nothing pending: all stored (or dead-lettered) and acked."""
    for stream in streams(queue, SHARDS):
        if client.xlen(stream) or client.xpending(stream, "collector")["pending"]:
            return False
    return True


def report(client, queue: str, pg_url: str, expected: set[str], survivor) -> None:
    """What a failed wait leaves to read: the missing ids and their shards, what each shard
    still holds, and the surviving collector's log."""
    stored = stored_ids(pg_url)
    missing = sorted(expected - set(stored))
    print("stored", len(stored), "of", len(expected), "missing", len(missing), missing[:20])
    print("missing by shard", Counter(shard_of(rid, SHARDS) for rid in missing))
    for stream in streams(queue, SHARDS):
        letters = client.xrange(dead_name(stream))
        print(stream, client.xlen(stream), client.xpending(stream, "collector"), letters[:5])
    survivor.stop()
    print(survivor.err[-6000:])


def test_sharded_queue_on_a_cluster_two_collectors_one_killed(cluster, pg_url, queue) -> None:
    url = cluster.url
    client = client_from_url(url)
    shards = ("--shards", str(SHARDS), "--claim-idle", "1")
    peers = [start_collector(url, pg_url, queue, name, *shards) for name in "ab"]
    try:
        wait_until(lambda: client.get(count_key(queue)) == b"6", 30, "the published count")
        # producers learn the shard count from the key the collectors published
        producers = [producer(url, queue, f"p{k}", EACH) for k in range(PRODUCERS)]
        wait_until(lambda: sum(client.xlen(s) for s in streams(queue, SHARDS)) > 0, 30, "records")
        time.sleep(0.5)
        assert peers[0].stop(signal.SIGKILL) == -signal.SIGKILL
        for proc in producers:
            assert proc.stop(None, timeout=120) == 0, proc.err
        expected = {f"p{k}-{i}" for k in range(PRODUCERS) for i in range(EACH)}
        try:
            wait_for_rows(pg_url, expected, timeout=120)
        except BaseException:
            report(client, queue, pg_url, expected, peers[1])
            raise
        wait_until(lambda: drained(client, queue), 60, "every shard to be drained")

        poisoned = stream_name(queue, SHARDS, 4)
        client.xadd(poisoned, {"m": b"\xc1 not msgpack"})
        wait_until(lambda: client.xlen(dead_name(poisoned)) == 1, 30, "the poison dead-lettered")
        letters = {s: client.xrange(dead_name(s)) for s in streams(queue, SHARDS)}
        assert [len(v) for v in letters.values()] == [0, 0, 0, 0, 1, 0], letters
        listed = CliRunner().invoke(main, ["dead", "list", "--redis-url", url, "--queue", queue])
        assert listed.exit_code == 0, listed.output
        assert f"({poisoned})" in listed.stdout
        assert "1 of 1 dead letters" in listed.stderr
    finally:
        assert peers[1].stop() == 0, peers[1].err
        client.close()
