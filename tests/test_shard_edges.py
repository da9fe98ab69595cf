"""Shard counts and queue names as a careless or hostile user meets them: collectors with
other counts coming and going while one runs, a count key of the wrong type, stream ids out of
range given to ``dead retry``."""

from __future__ import annotations

from dataclasses import replace

from collector.daemon import Collector
from collector.shards import RESCAN
from tests.helpers import drain, rows
from workers import Emitter
from workers.names import QueueNames


def stored(settings) -> list[str]:
    return sorted(r["_id"] for r in rows(settings.db_url, "t"))


def test_a_running_collector_reads_the_shards_a_peer_with_more_left(
    settings, fake_redis, tmp_path
) -> None:
    now = [0.0]
    mine = Collector(replace(settings, shards=2), client=fake_redis, clock=lambda: now[0])
    mine.start()
    try:
        drain(mine)  # reads <queue>:{0}, {1} and <queue>, publishes 2
        peer = replace(settings, shards=4, consumer="peer", db_url=f"sqlite:///{tmp_path}/p.db")
        other = Collector(peer, client=fake_redis)
        other.start()
        drain(other)  # publishes 4, then stops: emitters keep sending to four shards
        other.close()
        assert fake_redis.get(QueueNames(settings.queue).count) == b"4"
        emit = Emitter(queue=settings.queue, client=fake_redis)
        sent = sorted(emit.emit({"x": 1}, table="t", key=f"k{i}") for i in range(40))
        now[0] += RESCAN
        drain(mine)
        assert stored(settings) == sent
    finally:
        mine.close()


def test_a_count_key_of_another_type_is_a_malformed_count(settings, fake_redis, caplog) -> None:
    names = QueueNames(settings.queue)
    fake_redis.hset(names.count, "a", "b")  # a careless hand: not a string key at all
    sent = Emitter(queue=settings.queue, client=fake_redis).emit({"x": 1}, table="t", key="k")
    assert fake_redis.xlen(settings.queue) == 1
    assert "malformed shard count" in caplog.text
    collector = Collector(replace(settings, shards=3), client=fake_redis)
    collector.start()
    try:
        drain(collector)
    finally:
        collector.close()
    assert stored(settings) == [sent]
    assert fake_redis.get(names.count) == b"3"
