"""collector.stream on a real Redis: delivery counts, one-at-a-time re-reads of suspects,
claims that are no delivery, acknowledgements that get through a full Redis, NOGROUP."""

from __future__ import annotations

import pytest
import redis

from collector.queuestats import persistence, queue_stats
from collector.reader import StreamReader
from collector.settings import Settings
from collector.stream import ClusterStream, Stream, redis_fault
from workers.names import QueueNames

pytestmark = pytest.mark.redis


def fill(client: redis.Redis, queue: str, n: int) -> list[bytes]:
    return [client.xadd(queue, {"m": f"r{i}".encode()}) for i in range(n)]


def test_pending_entries_carry_their_delivery_counts(real_redis, queue) -> None:
    stream = Stream(real_redis, queue, "c1")
    stream.ensure_group()
    ids = fill(real_redis, queue, 3)
    assert [e.deliveries for e in stream.read_new(10, 0)] == [1, 1, 1]
    assert [(e.id, e.deliveries) for e in stream.read_pending(10)] == [(i, 2) for i in ids]


def test_a_suspect_entry_is_re_read_alone(real_redis, queue) -> None:
    stream = Stream(real_redis, queue, "c1")
    stream.ensure_group()
    ids = fill(real_redis, queue, 4)
    stream.read_new(10, 0)
    stream.read_pending(10)  # every entry now delivered twice without an ack
    reader = StreamReader(Settings(queue=queue, consumer="c1"), client=real_redis)
    taken = reader.next_batch()
    assert taken.ids == [ids[0]]
    assert stream.pending(10) == {ids[0]: 4, **{i: 3 for i in ids[1:]}}
    reader.finish(taken)
    # the others were not delivered again by that read
    assert [(e.id, e.deliveries) for e in stream.read_pending(1)] == [(ids[1], 3)]


def test_claims_take_only_other_consumers_idle_entries_without_a_delivery(
    real_redis, queue
) -> None:
    dead, live = Stream(real_redis, queue, "dead"), Stream(real_redis, queue, "live")
    dead.ensure_group()
    ids = fill(real_redis, queue, 5)
    dead.read_new(3, 0)
    live.read_new(10, 0)  # live's own two entries are never "claimed" by itself
    assert live.claim_stale(0, 2) == 2  # a page of two
    assert not live.claim_scan_done
    assert live.claim_stale(0, 2) == 1  # ids[2], and live's own ids[3]
    assert live.claim_stale(0, 2) == 0 and live.claim_scan_done  # ids[4]: the end
    assert [(e.id, e.deliveries) for e in live.read_pending(10)] == [(i, 2) for i in ids]


def test_finish_dead_letters_then_acknowledges_and_deletes(real_redis, queue) -> None:
    stream = Stream(real_redis, queue, "c1")
    stream.ensure_group()
    ids = fill(real_redis, queue, 3)
    stream.read_new(10, 0)
    stream.finish(ids, [(ids[1], b"r1", "why not")])
    assert real_redis.xlen(queue) == 0
    assert real_redis.xpending(queue, "collector")["pending"] == 0
    ((_, fields),) = real_redis.xrange(f"{queue}:dead")
    assert (fields[b"m"], fields[b"reason"]) == (b"r1", b"why not")


@pytest.mark.parametrize("kind", [Stream, ClusterStream])
def test_finish_acknowledges_and_deletes_every_id_of_a_full_batch(real_redis, queue, kind) -> None:
    stream = kind(real_redis, queue, "c1")
    stream.ensure_group()
    ids = fill(real_redis, queue, 2000)
    assert len(stream.read_new(2000, 0)) == 2000
    assert stream.finish(ids, []) == []
    assert real_redis.xlen(queue) == 0
    assert real_redis.xpending(queue, "collector")["pending"] == 0


def test_an_error_reply_to_the_ack_is_raised_with_the_connection_in_step(real_redis, queue):
    stream = Stream(real_redis, queue, "c1")
    real_redis.set(queue, "not a stream")  # XDEL and XACK both answer WRONGTYPE
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        stream.finish([b"1-0"], [])
    assert real_redis.get(queue) == b"not a stream"  # each reply read: the next one is its own


def test_a_read_may_block_longer_than_the_socket_timeout(queue) -> None:
    """``--max-wait`` past the client's socket timeout (5 s by redis-py's default) is a long
    wait on an empty queue, not a Redis outage; the entries of a reply that comes late are
    read, not left pending unseen."""
    client = redis.Redis(socket_timeout=0.3)
    try:
        stream = Stream(client, queue, "c1")
        stream.ensure_group()
        assert stream.read_new(10, 0.8) == []
        request = stream.request_new(10, 800)
        client.xadd(queue, {"m": b"late"})  # on another connection: the read returns
        assert [e.raw for e in stream.receive(request)] == [b"late"]
    finally:
        client.delete(queue)
        client.close()


def test_health_reports_are_published_and_cleared(real_redis, queue) -> None:
    stream = Stream(real_redis, queue, "c1")
    stream.ensure_group()
    stream.report({"since": 1.0, "attempts": 3, "error": "database unavailable: locked"})
    assert stream.last_error() == "database unavailable: locked"
    stats = queue_stats(real_redis, QueueNames(queue), [queue])
    assert stats["failing"] == {
        "c1": {"since": 1.0, "attempts": 3, "error": "database unavailable: locked"}
    }
    stream.report(None)
    stats = queue_stats(real_redis, QueueNames(queue), [queue])
    assert stats["failing"] == {} and stream.last_error() is None


def test_fault_kinds_of_redis_errors(real_redis, queue) -> None:
    stream = Stream(real_redis, queue, "c1")
    with pytest.raises(redis.ResponseError) as nogroup:
        stream.read_new(1, 0)
    assert redis_fault(nogroup.value) == "nogroup"
    real_redis.set(f"{queue}:plain", 1)
    with pytest.raises(redis.ResponseError) as wrongtype:
        Stream(real_redis, f"{queue}:plain", "c1").ensure_group()
    assert redis_fault(wrongtype.value) == "config"
    assert redis_fault(redis.AuthenticationError("invalid password")) == "config"
    assert redis_fault(redis.ResponseError("OOM command not allowed")) == "retry"
    assert redis_fault(redis.ConnectionError("refused")) == "retry"


def test_persistence_reads_the_server_settings(real_redis) -> None:
    found = persistence(real_redis)
    aof = real_redis.config_get("appendonly")["appendonly"] == "yes"
    rdb = bool(real_redis.config_get("save")["save"].strip())
    assert found == {"aof": aof, "rdb": rdb, "survives_restart": aof or rdb}
