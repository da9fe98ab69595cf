"""Shard naming, routing and the shard count: workers.shards, the Emitter, the settings."""

from __future__ import annotations

import zlib

import pytest
from click.testing import CliRunner

from collector.cli import main
from collector.errors import ConfigError
from collector.settings import Settings
from workers import Emitter
from workers.entry import decode_records
from workers.names import QueueNames
from workers.settings import EmitterSettings
from workers.shards import first_id, parse_shards, route, shard_of


def ids_on(client, stream: str) -> list[str]:
    return [r.id for _, f in client.xrange(stream) for r in decode_records(f[b"m"])]


def test_one_shard_is_the_single_stream_of_today() -> None:
    assert QueueNames("q").streams(1) == ["q"]
    assert QueueNames.dead(QueueNames("q").streams(1)[0]) == "q:dead"
    assert shard_of("anything", 1) == 0


def test_n_shards_are_hash_tagged_with_their_dead_letters() -> None:
    assert QueueNames("q").streams(3) == ["q:{0}", "q:{1}", "q:{2}"]
    assert [QueueNames.dead(s) for s in QueueNames("q").streams(3)] == [
        "q:{0}:dead",
        "q:{1}:dead",
        "q:{2}:dead",
    ]
    assert QueueNames("q").count == "q:shards"


def test_shard_of_is_crc32_of_the_id_so_stable_everywhere() -> None:
    assert shard_of("abc", 6) == zlib.crc32(b"abc") % 6 == 0  # 891568578 % 6
    assert {shard_of(f"k{i}", 4) for i in range(100)} == {0, 1, 2, 3}


@pytest.mark.parametrize("text", ["0", "-2", "x", "1025", "1.5"])
def test_bad_shard_counts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="COLLECTOR_SHARDS must be a whole number from 1 to 1024"):
        parse_shards(text)


def test_first_id_reads_a_record_and_a_batch_entry(fake_redis, queue) -> None:
    Emitter(queue=queue, client=fake_redis, shards=1).emit({"x": 1}, key="one")
    Emitter(queue=queue, client=fake_redis, shards=1).emit_many([{"x": 1}, {"x": 2}])
    (_, single), (_, batch) = fake_redis.xrange(queue)
    assert first_id(single[b"m"]) == "one"
    assert first_id(batch[b"m"]) == decode_records(batch[b"m"])[0].id
    assert first_id(b"\xc1junk") == b"\xc1junk".hex()


def test_route_groups_by_shard_in_order() -> None:
    assert route(QueueNames("q"), 1, [b"a", b"b"]) == {"q": [b"a", b"b"]}


def test_emitter_spreads_records_by_key_over_shards(fake_redis, queue) -> None:
    emitter = Emitter(queue=queue, client=fake_redis, shards=3)
    keys = [f"key{i}" for i in range(30)]
    for key in keys:
        emitter.emit({"x": 1}, key=key)
    for i, stream in enumerate(QueueNames(queue).streams(3)):
        assert ids_on(fake_redis, stream) == [k for k in keys if shard_of(k, 3) == i]
    assert fake_redis.exists(queue) == 0


def test_a_batch_entry_goes_whole_to_the_shard_of_its_first_record(fake_redis, queue) -> None:
    ids = Emitter(queue=queue, client=fake_redis, shards=4).emit_many([{"i": i} for i in range(9)])
    stream = QueueNames(queue).streams(4)[shard_of(ids[0], 4)]
    assert ids_on(fake_redis, stream) == ids
    assert fake_redis.xlen(stream) == 1


def test_emitter_learns_the_count_the_collector_published_once(fake_redis, queue) -> None:
    fake_redis.set(QueueNames(queue).count, "2")
    emitter = Emitter(queue=queue, client=fake_redis)
    emitter.emit({"x": 1}, key="a")
    fake_redis.set(QueueNames(queue).count, "5")  # cached: read once
    emitter.emit({"x": 1}, key="b")
    assert emitter.shard_count == 2
    assert sum(len(ids_on(fake_redis, s)) for s in QueueNames(queue).streams(2)) == 2


def test_emitter_without_a_published_count_uses_one_stream(fake_redis, queue) -> None:
    Emitter(queue=queue, client=fake_redis).emit({"x": 1}, key="a")
    assert ids_on(fake_redis, queue) == ["a"]


def test_emitter_asks_again_until_a_count_is_published(fake_redis, queue, monkeypatch) -> None:
    emitter = Emitter(queue=queue, client=fake_redis)
    assert emitter.shard_count == 1
    fake_redis.set(QueueNames(queue).count, "3")
    assert emitter.shard_count == 1  # asked a moment ago: not again before ASK_AGAIN
    monkeypatch.setattr(emitter._count, "_ask_after", 0.0)  # ASK_AGAIN seconds later
    assert emitter.shard_count == 3
    fake_redis.delete(QueueNames(queue).count)
    assert emitter.shard_count == 3  # once published, read once and kept


def test_the_environment_beats_the_published_count(fake_redis, queue, monkeypatch) -> None:
    fake_redis.set(QueueNames(queue).count, "2")
    monkeypatch.setenv("COLLECTOR_SHARDS", "3")
    assert EmitterSettings.from_env().shards == 3
    assert Emitter(queue=queue, client=fake_redis).shard_count == 3


def test_collector_settings_read_shards_from_env_and_flag(monkeypatch) -> None:
    assert Settings.from_env().shards == 1
    monkeypatch.setenv("COLLECTOR_SHARDS", "4")
    assert Settings.from_env().shards == 4
    assert Settings.from_env(shards=6).shards == 6
    assert "shards=6" in Settings.from_env(shards=6).describe()
    monkeypatch.setenv("COLLECTOR_SHARDS", "zero")
    with pytest.raises(
        ConfigError, match=r"^COLLECTOR_SHARDS must be a whole number from 1 to 1024"
    ):
        Settings.from_env()
    with pytest.raises(ConfigError, match=r"^shards must be a whole number from 1 to 1024"):
        Settings.from_env(shards=0)


def test_run_refuses_a_bad_shards_flag() -> None:
    result = CliRunner().invoke(main, ["run", "--shards", "0"])
    assert result.exit_code == 2 and "--shards" in result.output
