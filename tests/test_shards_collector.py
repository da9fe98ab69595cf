"""The collector on a sharded queue (N=3) on the machine's plain Redis: reads, acks, dead
letters, pending re-reads and claims, each on the entry's own shard."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner

from collector.cli import main
from collector.daemon import Collector
from collector.entries import Entry
from collector.metrics import Metrics
from collector.queuestats import queue_stats
from collector.settings import Settings
from collector.shards import ShardedReader
from collector.stream import Stream
from collector.sweeps.progress import unstored
from collector.web.data import dead_page
from tests.helpers import REAL_REDIS_URL, drain, on_real_redis, rows
from workers import Emitter
from workers.entry import decode_records
from workers.names import QueueNames
from workers.shards import shard_of
from workers.spool import Spool

N = 3


@pytest.fixture
def sharded(settings: Settings, real_redis) -> Settings:
    return replace(on_real_redis(settings), shards=N)


@pytest.fixture
def emitter(real_redis, queue) -> Emitter:
    return Emitter(queue=queue, client=real_redis, shards=N)


def collect(settings: Settings) -> Collector:
    collector = Collector(settings)
    collector.start()
    return collector


def read_every_shard(client, queue: str, consumer: str) -> list[Entry]:
    """What a consumer that then dies reads: the new entries of every shard."""
    taken: list[Entry] = []
    for name in QueueNames(queue).read_streams(N):
        stream = Stream(client, name, consumer, names=QueueNames(queue))
        stream.ensure_group()
        taken += stream.read_new(100, 0)
    return taken


def test_every_shard_is_drained_into_the_table_once(sharded, emitter, real_redis) -> None:
    keys = [f"k{i}" for i in range(60)]
    for key in keys:
        emitter.emit({"i": int(key[1:])}, table="t", key=key)
    emitter.emit_many([{"i": 100 + i} for i in range(10)], table="t")
    assert {real_redis.xlen(s) > 0 for s in QueueNames(sharded.queue).streams(N)} == {True}
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    stored = rows(sharded.db_url, "t")
    assert len(stored) == 70 and len({r["_id"] for r in stored}) == 70
    assert {r["_id"] for r in stored} >= set(keys)
    assert [real_redis.xlen(s) for s in QueueNames(sharded.queue).read_streams(N)] == [0, 0, 0, 0]
    assert real_redis.get(QueueNames(sharded.queue).count) == b"3"


def test_a_poison_record_is_dead_lettered_on_its_own_shard(sharded, emitter, real_redis) -> None:
    emitter.emit({"x": 1}, table="t", key="good")
    poison = QueueNames(sharded.queue).streams(N)[1]
    real_redis.xadd(poison, {"m": b"\xc1not msgpack"})
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    dead = [QueueNames.dead(s) for s in QueueNames(sharded.queue).streams(N)]
    assert [real_redis.xlen(d) for d in dead] == [0, 1, 0]
    assert real_redis.xrange(dead[1])[0][1][b"m"] == b"\xc1not msgpack"
    assert [r["_id"] for r in rows(sharded.db_url, "t")] == ["good"]


def test_same_entry_id_on_two_shards_is_acked_on_each(sharded, real_redis, queue) -> None:
    one, two = QueueNames(queue).streams(N)[0], QueueNames(queue).streams(N)[2]
    real_redis.xadd(one, {"m": b"\xc1"}, id="1-1")
    real_redis.xadd(two, {"m": b"\xc1"}, id="1-1")  # the same id on another shard
    for stream, key in ((one, "a"), (two, "b")):
        Emitter(queue=stream, client=real_redis, shards=1).emit({"x": 1}, table="t", key=key)
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    assert sorted(r["_id"] for r in rows(sharded.db_url, "t")) == ["a", "b"]
    assert (real_redis.xlen(one), real_redis.xlen(two)) == (0, 0)
    assert (real_redis.xlen(QueueNames.dead(one)), real_redis.xlen(QueueNames.dead(two))) == (1, 1)


def test_own_pending_entries_are_re_read_per_shard(sharded, emitter, real_redis) -> None:
    for key in ("a", "b", "c", "d"):
        emitter.emit({"x": 1}, table="t", key=key)
    taken = read_every_shard(real_redis, sharded.queue, sharded.consumer)  # never acked: a crash
    assert len(taken) == 4
    counts = sorted(
        int(real_redis.xpending(s, "collector")["pending"])
        for s in QueueNames(sharded.queue).streams(N)
    )
    assert counts == sorted(sum(1 for k in "abcd" if shard_of(k, N) == i) for i in range(N))
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    assert sorted(r["_id"] for r in rows(sharded.db_url, "t")) == ["a", "b", "c", "d"]
    assert [
        int(real_redis.xpending(s, "collector")["pending"])
        for s in QueueNames(sharded.queue).streams(N)
    ] == [0] * N


def test_a_dead_peers_records_are_claimed_on_every_shard(sharded, emitter, real_redis) -> None:
    for i in range(12):
        emitter.emit({"x": i}, table="t", key=f"k{i}")
    read_every_shard(real_redis, sharded.queue, "peer")  # the peer reads everything, then dies
    collector = collect(replace(sharded, claim_idle=0))
    try:
        drain(collector)
    finally:
        collector.close()
    assert len(rows(sharded.db_url, "t")) == 12


def test_an_empty_sharded_read_waits_at_most_the_batch_wait(sharded, real_redis) -> None:
    reader = ShardedReader(replace(sharded, max_wait=0.3), client=real_redis)
    reader.next_batch()  # opens the shards: their groups, the count
    started = time.monotonic()
    assert not reader.next_batch()
    assert 0.25 <= time.monotonic() - started < 0.6


def test_status_figures_are_per_shard_and_total(sharded, emitter, real_redis) -> None:
    for key in ("a", "b", "c", "d", "e"):
        emitter.emit({"x": 1}, table="t", key=key)
    for name in QueueNames(sharded.queue).read_streams(N):
        Stream(real_redis, name, "c").ensure_group()
    stats = queue_stats(
        real_redis, QueueNames(sharded.queue), QueueNames(sharded.queue).read_streams(N)
    )
    per = [sum(1 for k in "abcde" if shard_of(k, N) == i) for i in range(N)]
    assert stats["queue"] == 5 and stats["pending"] == 0 and stats["dead"] == 0
    assert [(s["stream"], s["queue"]) for s in stats["shards"]] == list(
        zip(QueueNames(sharded.queue).read_streams(N), [*per, 0], strict=True)
    )


def cli(*args: str) -> str:
    """Run a command that must succeed; its standard output (then its standard error)."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout + result.stderr


def test_status_json_and_dead_commands_work_across_shards(sharded, emitter, real_redis) -> None:
    emitter.emit({"x": 1}, table="t", key="good")
    for i in (0, 2):
        real_redis.xadd(QueueNames(sharded.queue).streams(N)[i], {"m": b"\xc1poison"})
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    where = ["--redis-url", REAL_REDIS_URL, "--queue", sharded.queue]  # N: published by run
    info = json.loads(cli("status", *where, "--db-url", sharded.db_url, "--json"))
    assert (info["queue"], info["pending"], info["dead"], info["tables"]) == (0, 0, 2, {"t": 1})
    assert [(s["stream"], s["dead"]) for s in info["shards"]] == list(
        zip(QueueNames(sharded.queue).read_streams(N), [1, 0, 1, 0], strict=True)
    )
    listed = cli("dead", "list", *where)
    assert f"2 of 2 dead letters in {sharded.queue}:{{0}}:dead" in listed
    assert f"({QueueNames(sharded.queue).streams(N)[2]})" in listed
    assert (
        cli("dead", "retry", "--all", *where).strip()
        == f"put 2 dead letters back on {sharded.queue}"
    )
    own = QueueNames(sharded.queue).streams(N)
    assert [real_redis.xlen(s) for s in own] == [1, 0, 1]  # own shards
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    letter = real_redis.xrange(QueueNames.dead(own[2]))[0][0].decode()
    assert cli("dead", "retry", letter, "--stream", own[2], *where).strip() == (
        f"put 1 dead letters back on {sharded.queue}"
    )
    assert cli("dead", "purge", "--yes", *where).startswith("purged 1 dead letters from ")
    assert sum(real_redis.xlen(QueueNames.dead(s)) for s in own) == 0


def test_spool_flush_routes_records_to_their_shards(sharded, real_redis, tmp_path) -> None:
    spooler = Emitter(queue=sharded.queue, client=real_redis, shards=1)
    payloads = [spooler.record({"x": i}, table="t", key=f"k{i}").encode() for i in range(9)]
    Spool(tmp_path / "s").append(sharded.queue, payloads)
    out = cli("spool", "flush", str(tmp_path / "s"), "--redis-url", REAL_REDIS_URL, "--shards", "3")
    assert out.startswith("sent 9 records")
    for i, stream in enumerate(QueueNames(sharded.queue).streams(N)):
        expected = [f"k{j}" for j in range(9) if shard_of(f"k{j}", N) == i]
        assert [
            r.id for _, f in real_redis.xrange(stream) for r in decode_records(f[b"m"])
        ] == expected
    assert real_redis.exists(sharded.queue) == 0


def test_metrics_gauges_add_up_every_shard(sharded, emitter, real_redis) -> None:
    for key in ("a", "b", "c", "d", "e"):
        emitter.emit({"x": 1}, table="t", key=key)
    real_redis.xadd(QueueNames(sharded.queue).streams(N)[2], {"m": b"\xc1poison"})
    get = Metrics(real_redis, sharded.queue, N).registry.get_sample_value
    assert (get("collector_backlog_records"), get("collector_dead_letters")) == (6, 0)
    peer = Stream(real_redis, QueueNames(sharded.queue).shard(0), "peer")
    peer.ensure_group()
    taken = peer.read_new(10, 0)  # one shard's entries, read and not acknowledged
    assert get("collector_pending_records") == len(taken) > 0
    collector = collect(replace(sharded, claim_idle=0))
    try:
        drain(collector)
    finally:
        collector.close()
    assert (get("collector_backlog_records"), get("collector_pending_records")) == (0, 0)
    assert get("collector_dead_letters") == 1


def test_the_web_dead_letter_page_pages_every_shard_newest_first(real_redis, queue) -> None:
    real_redis.set(QueueNames(queue).count, N)  # as a collector publishes it
    placed = {0: ["1-0", "4-0"], 1: ["2-0"], 2: ["3-0", "5-0"]}
    for index, ids in placed.items():
        for entry_id in ids:
            real_redis.xadd(
                QueueNames.dead(QueueNames(queue).streams(N)[index]), {"reason": "r"}, id=entry_id
            )
    pages = [dead_page(real_redis, queue, page, 2) for page in (1, 2, 3)]
    assert {(p["total"], p["pages"]) for p in pages} == {(5, 3)}
    shown = [(item["id"], item["stream"]) for p in pages for item in p["items"]]
    assert shown == [
        ("5-0", QueueNames(queue).streams(N)[2]),
        ("4-0", QueueNames(queue).streams(N)[0]),
        ("3-0", QueueNames(queue).streams(N)[2]),
        ("2-0", QueueNames(queue).streams(N)[1]),
        ("1-0", QueueNames(queue).streams(N)[0]),
    ]


def test_records_sent_before_the_count_was_published_are_collected(sharded, real_redis) -> None:
    early = Emitter(queue=sharded.queue, client=real_redis)  # no count published yet
    early.emit({"x": 1}, table="t", key="early")
    where = ["--redis-url", REAL_REDIS_URL, "--queue", sharded.queue, "--db-url", sharded.db_url]
    info = json.loads(cli("status", *where, "--shards", "3", "--json"))
    assert (info["queue"], info["shards"][-1]["stream"], info["shards"][-1]["queue"]) == (
        1,
        sharded.queue,
        1,
    )
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    assert [r["_id"] for r in rows(sharded.db_url, "t")] == ["early"]
    assert real_redis.xlen(sharded.queue) == 0
    assert real_redis.get(QueueNames(sharded.queue).count) == b"3"


def test_sweeps_count_unstored_records_on_every_shard(sharded, emitter, real_redis) -> None:
    assert unstored(real_redis, sharded.queue) == 0
    Emitter(queue=sharded.queue, client=real_redis).emit({"x": 0}, key="early")  # unsharded
    real_redis.set(QueueNames(sharded.queue).count, N)
    for key in ("a", "b", "c", "d"):
        emitter.emit({"x": 1}, table="t", key=key)
    assert unstored(real_redis, sharded.queue) == 5


def test_fewer_shards_than_published_read_the_others_too(sharded, real_redis, queue, caplog):
    real_redis.set(QueueNames(queue).count, 6)
    reader = ShardedReader(replace(sharded, shards=4), client=real_redis)
    with caplog.at_level("WARNING", logger="collector.shards"):
        reader.next_batch()
    assert real_redis.get(QueueNames(queue).count) == b"4"
    names = QueueNames(queue)
    expected = [*names.streams(4), queue, names.shard(4), names.shard(5)]
    assert [s.name for s in reader.shards] == expected
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"{queue}:shards said 6 shards, this collector has 4: ")
    assert f"it also reads {queue}:{{4}}, {queue}:{{5}} (records sent" in message
    caplog.clear()
    with caplog.at_level("WARNING", logger="collector.shards"):
        ShardedReader(replace(sharded, shards=8), client=real_redis).next_batch()  # more: no news
    assert caplog.records == [] and real_redis.get(QueueNames(queue).count) == b"8"
