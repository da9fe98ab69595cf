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
from collector.metrics import Metrics
from collector.settings import Settings
from collector.shards import ShardedStream, tag, untag
from collector.sweeps.progress import unstored
from collector.web.data import dead_page
from tests.helpers import REAL_REDIS_URL, drain, on_real_redis, rows
from workers import Emitter
from workers.entry import decode_records
from workers.shards import count_key, dead_name, read_streams, shard_of, stream_name, streams
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


def test_tags_round_trip() -> None:
    assert untag(tag(2, b"17-0")) == (2, b"17-0")


def test_every_shard_is_drained_into_the_table_once(sharded, emitter, real_redis) -> None:
    keys = [f"k{i}" for i in range(60)]
    for key in keys:
        emitter.emit({"i": int(key[1:])}, table="t", key=key)
    emitter.emit_many([{"i": 100 + i} for i in range(10)], table="t")
    assert {real_redis.xlen(s) > 0 for s in streams(sharded.queue, N)} == {True}
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    stored = rows(sharded.db_url, "t")
    assert len(stored) == 70 and len({r["_id"] for r in stored}) == 70
    assert {r["_id"] for r in stored} >= set(keys)
    assert [real_redis.xlen(s) for s in read_streams(sharded.queue, N)] == [0, 0, 0, 0]
    assert real_redis.get(count_key(sharded.queue)) == b"3"


def test_a_poison_record_is_dead_lettered_on_its_own_shard(sharded, emitter, real_redis) -> None:
    emitter.emit({"x": 1}, table="t", key="good")
    poison = stream_name(sharded.queue, N, 1)
    real_redis.xadd(poison, {"m": b"\xc1not msgpack"})
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    dead = [dead_name(s) for s in streams(sharded.queue, N)]
    assert [real_redis.xlen(d) for d in dead] == [0, 1, 0]
    assert real_redis.xrange(dead[1])[0][1][b"m"] == b"\xc1not msgpack"
    assert [r["_id"] for r in rows(sharded.db_url, "t")] == ["good"]


def test_same_entry_id_on_two_shards_is_acked_on_each(sharded, real_redis, queue) -> None:
    one, two = stream_name(queue, N, 0), stream_name(queue, N, 2)
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
    assert (real_redis.xlen(dead_name(one)), real_redis.xlen(dead_name(two))) == (1, 1)


def test_own_pending_entries_are_re_read_per_shard(sharded, emitter, real_redis) -> None:
    for key in ("a", "b", "c", "d"):
        emitter.emit({"x": 1}, table="t", key=key)
    reader = ShardedStream(real_redis, sharded.queue, sharded.consumer, N)
    reader.ensure_group()
    taken = [e for _ in range(N) for e in reader.read_new(10, 0)]  # read, never acked: a crash
    assert len(taken) == 4
    counts = sorted(
        int(real_redis.xpending(s, "collector")["pending"]) for s in streams(sharded.queue, N)
    )
    assert counts == sorted(sum(1 for k in "abcd" if shard_of(k, N) == i) for i in range(N))
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    assert sorted(r["_id"] for r in rows(sharded.db_url, "t")) == ["a", "b", "c", "d"]
    assert [
        int(real_redis.xpending(s, "collector")["pending"]) for s in streams(sharded.queue, N)
    ] == [0] * N


def test_a_dead_peers_records_are_claimed_on_every_shard(sharded, emitter, real_redis) -> None:
    for i in range(12):
        emitter.emit({"x": i}, table="t", key=f"k{i}")
    peer = ShardedStream(real_redis, sharded.queue, "peer", N)
    peer.ensure_group()
    while peer.read_new(100, 0):
        pass  # the peer reads everything, then dies
    collector = collect(replace(sharded, claim_idle=0))
    try:
        drain(collector)
    finally:
        collector.close()
    assert len(rows(sharded.db_url, "t")) == 12


def test_an_empty_sharded_read_waits_at_most_the_batch_wait(sharded, real_redis) -> None:
    stream = ShardedStream(real_redis, sharded.queue, "c", N)
    stream.ensure_group()
    started = time.monotonic()
    assert stream.read_new(10, 0.3) == []
    assert 0.25 <= time.monotonic() - started < 0.6


def test_status_figures_are_per_shard_and_total(sharded, emitter, real_redis) -> None:
    for key in ("a", "b", "c", "d", "e"):
        emitter.emit({"x": 1}, table="t", key=key)
    stream = ShardedStream(real_redis, sharded.queue, "c", N)
    stream.ensure_group()
    stats = stream.stats()
    per = [sum(1 for k in "abcde" if shard_of(k, N) == i) for i in range(N)]
    assert stats["queue"] == 5 and stats["pending"] == 0 and stats["dead"] == 0
    assert [(s["stream"], s["queue"]) for s in stats["shards"]] == list(
        zip(read_streams(sharded.queue, N), [*per, 0], strict=True)
    )


def cli(*args: str) -> str:
    """Run a command that must succeed; its standard output (then its standard error)."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout + result.stderr


def test_status_json_and_dead_commands_work_across_shards(sharded, emitter, real_redis) -> None:
    emitter.emit({"x": 1}, table="t", key="good")
    for i in (0, 2):
        real_redis.xadd(stream_name(sharded.queue, N, i), {"m": b"\xc1poison"})
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    where = ["--redis-url", REAL_REDIS_URL, "--queue", sharded.queue]  # N: published by run
    info = json.loads(cli("status", *where, "--db-url", sharded.db_url, "--json"))
    assert (info["queue"], info["pending"], info["dead"], info["tables"]) == (0, 0, 2, {"t": 1})
    assert [(s["stream"], s["dead"]) for s in info["shards"]] == list(
        zip(read_streams(sharded.queue, N), [1, 0, 1, 0], strict=True)
    )
    listed = cli("dead", "list", *where)
    assert f"2 of 2 dead letters in {sharded.queue}:{{0}}:dead" in listed
    assert f"({stream_name(sharded.queue, N, 2)})" in listed
    assert (
        cli("dead", "retry", "--all", *where).strip()
        == f"put 2 dead letters back on {sharded.queue}"
    )
    assert [real_redis.xlen(s) for s in streams(sharded.queue, N)] == [1, 0, 1]  # own shards
    collector = collect(sharded)
    try:
        drain(collector)
    finally:
        collector.close()
    letter = real_redis.xrange(dead_name(stream_name(sharded.queue, N, 2)))[0][0].decode()
    # both were dead-lettered in one finish, on two shards: maybe in one millisecond, one id
    same = sum(
        1 for s in streams(sharded.queue, N) if real_redis.xrange(dead_name(s), letter, letter)
    )
    assert (
        cli("dead", "retry", letter, *where).strip()
        == f"put {same} dead letters back on {sharded.queue}"
    )
    left = 2 - same
    assert cli("dead", "purge", "--yes", *where).startswith(f"purged {left} dead letters from ")
    assert sum(real_redis.xlen(dead_name(s)) for s in streams(sharded.queue, N)) == 0


def test_spool_flush_routes_records_to_their_shards(sharded, real_redis, tmp_path) -> None:
    spooler = Emitter(queue=sharded.queue, client=real_redis, shards=1)
    payloads = [spooler.record({"x": i}, table="t", key=f"k{i}").encode() for i in range(9)]
    Spool(tmp_path / "s").append(sharded.queue, payloads)
    out = cli("spool", "flush", str(tmp_path / "s"), "--redis-url", REAL_REDIS_URL, "--shards", "3")
    assert out.startswith("sent 9 records")
    for i, stream in enumerate(streams(sharded.queue, N)):
        expected = [f"k{j}" for j in range(9) if shard_of(f"k{j}", N) == i]
        assert [
            r.id for _, f in real_redis.xrange(stream) for r in decode_records(f[b"m"])
        ] == expected
    assert real_redis.exists(sharded.queue) == 0


def test_metrics_gauges_add_up_every_shard(sharded, emitter, real_redis) -> None:
    for key in ("a", "b", "c", "d", "e"):
        emitter.emit({"x": 1}, table="t", key=key)
    real_redis.xadd(stream_name(sharded.queue, N, 2), {"m": b"\xc1poison"})
    get = Metrics(real_redis, sharded.queue, N).registry.get_sample_value
    assert (get("collector_backlog_records"), get("collector_dead_letters")) == (6, 0)
    reader = ShardedStream(real_redis, sharded.queue, "peer", N)
    reader.ensure_group()
    taken = reader.read_new(10, 0)  # one shard's entries, read and not acknowledged
    assert get("collector_pending_records") == len(taken) > 0
    collector = collect(replace(sharded, claim_idle=0))
    try:
        drain(collector)
    finally:
        collector.close()
    assert (get("collector_backlog_records"), get("collector_pending_records")) == (0, 0)
    assert get("collector_dead_letters") == 1


def test_the_web_dead_letter_page_pages_every_shard_newest_first(real_redis, queue) -> None:
    real_redis.set(count_key(queue), N)  # as a collector publishes it
    placed = {0: ["1-0", "4-0"], 1: ["2-0"], 2: ["3-0", "5-0"]}
    for index, ids in placed.items():
        for entry_id in ids:
            real_redis.xadd(dead_name(stream_name(queue, N, index)), {"reason": "r"}, id=entry_id)
    pages = [dead_page(real_redis, queue, page, 2) for page in (1, 2, 3)]
    assert {(p["total"], p["pages"]) for p in pages} == {(5, 3)}
    shown = [(item["id"], item["stream"]) for p in pages for item in p["items"]]
    assert shown == [
        ("5-0", stream_name(queue, N, 2)),
        ("4-0", stream_name(queue, N, 0)),
        ("3-0", stream_name(queue, N, 2)),
        ("2-0", stream_name(queue, N, 1)),
        ("1-0", stream_name(queue, N, 0)),
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
    assert real_redis.get(count_key(sharded.queue)) == b"3"


def test_sweeps_count_unstored_records_on_every_shard(sharded, emitter, real_redis) -> None:
    assert unstored(real_redis, sharded.queue) == 0
    Emitter(queue=sharded.queue, client=real_redis).emit({"x": 0}, key="early")  # unsharded
    real_redis.set(count_key(sharded.queue), N)
    for key in ("a", "b", "c", "d"):
        emitter.emit({"x": 1}, table="t", key=key)
    assert unstored(real_redis, sharded.queue) == 5


def test_fewer_shards_than_published_warn_of_the_unread_ones(real_redis, queue, caplog) -> None:
    real_redis.set(count_key(queue), 6)
    with caplog.at_level("WARNING", logger="collector.shards"):
        ShardedStream(real_redis, queue, "c", 4).ensure_group()
    assert real_redis.get(count_key(queue)) == b"4"
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"{queue}:shards said 6 shards, this collector reads 4: ")
    assert (
        f"records on {queue}:{{4}} .. {queue}:{{5}} are read only by a collector with " in message
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="collector.shards"):
        ShardedStream(real_redis, queue, "c", 8).ensure_group()  # more: every shard is read
    assert caplog.records == [] and real_redis.get(count_key(queue)) == b"8"
