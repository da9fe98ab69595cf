"""Sharded queues on a real local Redis Cluster (issue 15): 4 producers emit 20,000 records over
6 shards while 2 collectors write to PostgreSQL, one SIGKILLed mid-run; exactly the emitted ids
are stored, once each. A poison record on one shard is dead-lettered on that shard, and
``collector dead list`` shows it."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli import main
from collector.metrics import Metrics
from collector.settings import Settings
from collector.shards import ShardedReader
from collector.stream import reader_client
from collector.web.data import dead_page
from faults.cluster import RedisCluster, running_cluster
from faults.servers import (
    collector,
    producer,
    start_collector,
    stored_ids,
    wait_for_rows,
    wait_until,
)
from workers.cluster import client_from_url
from workers.names import QueueNames
from workers.shards import shard_of

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
SHARDS, PRODUCERS, EACH = 6, 4, 5000


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    with running_cluster(tmp_path / "cluster") as started:
        yield started


def drained(client, queue: str) -> bool:
    """Every shard empty and nothing pending: all stored (or dead-lettered) and acked."""
    for stream in QueueNames(queue).streams(SHARDS):
        if client.xlen(stream) or client.xpending(stream, "collector")["pending"]:
            return False
    return True


def report(client, queue: str, pg_url: str, expected: set[str], peers) -> None:
    """What a failed wait leaves to read: the missing ids and their shards, what each shard
    still holds, and both collectors' logs."""
    stored = stored_ids(pg_url)
    missing = sorted(expected - set(stored))
    print("stored", len(stored), "of", len(expected), "missing", len(missing), missing[:20])
    print("missing by shard", Counter(shard_of(rid, SHARDS) for rid in missing))
    for stream in QueueNames(queue).streams(SHARDS):
        letters = client.xrange(QueueNames.dead(stream))
        print(stream, client.xlen(stream), client.xpending(stream, "collector"), letters[:5])
    for peer in peers:
        peer.stop()
        print(peer.err[-6000:])


def test_sharded_queue_on_a_cluster_two_collectors_one_killed(cluster, pg_url, queue) -> None:
    url = cluster.url
    client = client_from_url(url)
    shards = ("--shards", str(SHARDS), "--claim-idle", "1")
    peers = [start_collector(url, pg_url, queue, name, *shards) for name in "ab"]
    try:
        wait_until(lambda: client.get(QueueNames(queue).count) == b"6", 30, "the published count")
        # producers learn the shard count from the key the collectors published
        producers = [producer(url, queue, f"p{k}", EACH) for k in range(PRODUCERS)]
        wait_until(
            lambda: sum(client.xlen(s) for s in QueueNames(queue).streams(SHARDS)) > 0,
            30,
            "records",
        )
        time.sleep(0.5)
        assert peers[0].stop(signal.SIGKILL) == -signal.SIGKILL
        for proc in producers:
            assert proc.stop(None, timeout=120) == 0, proc.err
        expected = {f"p{k}-{i}" for k in range(PRODUCERS) for i in range(EACH)}
        try:
            wait_for_rows(pg_url, expected, timeout=120)
        except BaseException:
            report(client, queue, pg_url, expected, peers)
            raise
        wait_until(lambda: drained(client, queue), 60, "every shard to be drained")

        poisoned = QueueNames(queue).streams(SHARDS)[4]
        client.xadd(poisoned, {"m": b"\xc1 not msgpack"})
        wait_until(
            lambda: client.xlen(QueueNames.dead(poisoned)) == 1, 30, "the poison dead-lettered"
        )
        letters = {s: client.xrange(QueueNames.dead(s)) for s in QueueNames(queue).streams(SHARDS)}
        if [len(v) for v in letters.values()] != [0, 0, 0, 0, 1, 0]:
            report(client, queue, pg_url, expected, peers)
            pytest.fail(f"dead letters on other shards than {poisoned}: {letters}")
        listed = CliRunner().invoke(main, ["dead", "list", "--redis-url", url, "--queue", queue])
        assert listed.exit_code == 0, listed.output
        assert f"({poisoned})" in listed.stdout
        assert "1 of 1 dead letters" in listed.stderr
    finally:
        assert peers[1].stop() == 0, peers[1].err
        client.close()


def test_a_collector_started_before_the_cluster_waits_for_it(tmp_path, pg_url, queue) -> None:
    cluster = RedisCluster(tmp_path / "cluster")  # its ports chosen, no node running yet
    proc = collector(
        "run", "--redis-url", cluster.url, "--db-url", pg_url, "--queue", queue,
        "--shards", "2", "--max-wait", "0.1",
    )  # fmt: skip
    try:
        proc.wait_for("retrying in", timeout=30)
        assert proc.poll() is None, "the collector gave up instead of waiting"
        cluster.start()
        client = client_from_url(cluster.url)
        try:
            wait_until(
                lambda: client.get(QueueNames(queue).count) == b"2", 60, "the published count"
            )
        finally:
            client.close()
        sent = producer(cluster.url, queue, "late", 20)
        assert sent.stop(None, timeout=60) == 0, sent.err
        wait_for_rows(pg_url, {f"late-{i}" for i in range(20)}, timeout=60)
    finally:
        assert proc.stop() == 0, proc.err
        cluster.stop()
    assert f"no Redis Cluster node answers at {cluster.url}" in proc.err


def test_the_collector_reads_a_cluster_without_the_clients_own_retries(cluster) -> None:
    """A read sent again after a lost reply would leave the first reply's entries pending
    unseen: the collector's cluster client does not retry (the daemon does, re-reading its
    pending entries); other commands keep the cluster client's retries."""
    reader, other = reader_client(cluster.url), client_from_url(cluster.url)
    try:
        assert (reader.retry.get_retries(), other.retry.get_retries()) == (0, 10)
        assert reader.ping() is True
    finally:
        reader.close()
        other.close()


def test_status_metrics_page_and_dead_commands_on_a_cluster(cluster, tmp_path, queue) -> None:
    """Every stream the collectors read, the shards and ``<queue>`` itself (whose dead letters,
    without a hash tag, are in another slot than it)."""
    client = client_from_url(cluster.url)
    try:
        opened = Settings(queue=queue, consumer="c", shards=SHARDS, max_wait=0)
        ShardedReader(opened, client=client).next_batch()  # the groups; publishes the count
        for name in (
            QueueNames(queue).streams(SHARDS)[1],
            QueueNames(queue).streams(SHARDS)[4],
            queue,
        ):
            client.xadd(QueueNames.dead(name), {"m": b"\xc1", "reason": "r"})
        client.xadd(QueueNames(queue).streams(SHARDS)[2], {"m": b"\xc1"})
        where = ["--redis-url", cluster.url, "--queue", queue]
        shown = CliRunner().invoke(
            main, ["status", *where, "--db-url", f"sqlite:///{tmp_path / 'r.db'}", "--json"]
        )
        assert shown.exit_code == 0, shown.output
        info = json.loads(shown.stdout)
        assert (info["queue"], info["dead"]) == (1, 3)
        assert [s["dead"] for s in info["shards"]] == [0, 1, 0, 0, 1, 0, 1]  # then <queue>
        get = Metrics(client, queue, SHARDS).registry.get_sample_value
        assert (get("collector_backlog_records"), get("collector_dead_letters")) == (1, 3)
        page = dead_page(client, queue, 1, 10)
        assert page["total"] == 3 and {i["stream"] for i in page["items"]} == {
            QueueNames(queue).streams(SHARDS)[1],
            QueueNames(queue).streams(SHARDS)[4],
            queue,
        }
        retried = CliRunner().invoke(main, ["dead", "retry", "--all", *where])
        assert retried.stdout == f"put 3 dead letters back on {queue}\n", retried.output
        assert [client.xlen(s) for s in QueueNames(queue).read_streams(SHARDS)] == [
            0,
            1,
            1,
            0,
            1,
            0,
            1,
        ]
        assert (
            sum(client.xlen(QueueNames.dead(s)) for s in QueueNames(queue).read_streams(SHARDS))
            == 0
        )
    finally:
        client.close()  # the cluster itself is removed with the fixture


def test_a_lost_cluster_node_stops_no_collector(cluster, pg_url, queue) -> None:
    """A master lost (no replica): the cluster refuses every command until it is back, empty;
    the collector backs off, re-creates the lost shards' groups, and goes on."""
    peer = start_collector(cluster.url, pg_url, queue, "c1", "--shards", "3")
    try:
        first = producer(cluster.url, queue, "before", 30)
        assert first.stop(None, timeout=60) == 0, first.err
        wait_for_rows(pg_url, {f"before-{i}" for i in range(30)}, timeout=60)
        cluster.kill(1)
        time.sleep(2)
        assert peer.poll() is None, "the collector exited while a node was down"
        cluster.restart(1)
        second = producer(cluster.url, queue, "after", 30)
        assert second.stop(None, timeout=90) == 0, second.err
        expected = {f"{name}-{i}" for name in ("before", "after") for i in range(30)}
        wait_for_rows(pg_url, expected, timeout=90)
    finally:
        code = peer.stop()
        print(peer.err)
    assert code == 0, peer.err
    assert "redis unavailable" in peer.err
