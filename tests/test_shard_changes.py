"""A queue's shard count changing under it strands nothing: a collector reads every stream that
holds records and publishes its count, emitters follow it (also after a cluster outage), and a
dead letter is named by its stream and id."""

from __future__ import annotations

from dataclasses import replace

import fakeredis
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from redis.exceptions import ClusterDownError

from collector.cli import main
from collector.daemon import Collector
from collector.settings import Settings
from tests.helpers import (
    REAL_REDIS_URL,
    drain,
    rows,
    start_collector,
    stop,
    wait_ready,
    wait_until,
)
from workers import Emitter
from workers.entry import decode_records
from workers.names import QueueNames
from workers.shards import shard_of


def run(settings: Settings, client) -> None:
    collector = Collector(settings, client=client)
    collector.start()
    try:
        drain(collector)
    finally:
        collector.close()


def stored(settings: Settings) -> list[str]:
    return sorted(r["_id"] for r in rows(settings.db_url, "t"))


def stored_ids(db_url: str) -> set[str]:
    """The ids in table ``t`` (none before the collector created it)."""
    try:
        return {r["_id"] for r in rows(db_url, "t")}
    except sa.exc.OperationalError:
        return set()


def ids_on(client, stream: str) -> list[str]:
    return [r.id for _, f in client.xrange(stream) for r in decode_records(f[b"m"])]


@pytest.mark.parametrize("first, then", [(4, 1), (1, 4), (3, 5), (5, 2)])
def test_a_shard_count_change_strands_no_record(settings, fake_redis, first, then) -> None:
    queue, names = settings.queue, QueueNames(settings.queue)
    emit = Emitter(queue=queue, client=fake_redis)  # follows what the collectors publish
    run(replace(settings, shards=first), fake_redis)
    assert fake_redis.get(names.count) == str(first).encode()
    before = [emit.emit({"x": 1}, table="t", key=f"a{i}") for i in range(40)]
    stale = Emitter(queue=queue, client=fake_redis)
    stale.emit({"x": 1}, table="t", key="stale0")  # routes by `first` until it reads again
    run(replace(settings, shards=then), fake_redis)
    assert stored(settings) == sorted([*before, "stale0"])
    assert fake_redis.get(names.count) == str(then).encode()
    late = stale.emit({"x": 1}, table="t", key="stale1")  # still by `first`: a stream not read
    fresh = Emitter(queue=queue, client=fake_redis).emit({"x": 1}, table="t", key="fresh")
    run(replace(settings, shards=then), fake_redis)  # a restart finds what waits there
    assert stored(settings) == sorted([*before, "stale0", late, fresh])
    assert sum(fake_redis.xlen(s) for s in names.read_streams(max(first, then))) == 0


@pytest.mark.redis
@pytest.mark.parametrize("first, then", [(4, 1), (1, 4)])
def test_collector_runs_with_other_shard_counts_strand_nothing_on_the_real_redis(
    real_redis, queue, sqlite_url, first, then
) -> None:
    """``collector run --shards first``, then ``--shards then`` and ``first`` again, each a
    real process; records emitted while each runs and in between (by emitters that follow the
    published count, and one that read it before the change) are all stored."""
    names, sent = QueueNames(queue), set()
    stale = Emitter(REAL_REDIS_URL, queue)  # reads the count once, then not for FOLLOW seconds

    def emit_some(emitter: Emitter, phase: str) -> None:
        sent.update(emitter.emit({"x": i}, table="t", key=f"{phase}-{i}") for i in range(8))
        emitter.close()

    for phase, count in enumerate((first, then, first)):
        proc = start_collector(REAL_REDIS_URL, sqlite_url, queue, "--shards", str(count))
        try:
            wait_ready(proc)
            wait_until(lambda c=count: real_redis.get(names.count) == str(c).encode(), 30)
            emit_some(Emitter(REAL_REDIS_URL, queue), f"run{phase}")  # follows the count
            sent.add(stale.emit({"x": -1}, table="t", key=f"stale{phase}"))
            wait_until(lambda: stored_ids(sqlite_url) == sent, 60)
        finally:
            assert stop(proc) == 0, proc.log_path.read_text()
        emit_some(Emitter(REAL_REDIS_URL, queue), f"after{phase}")  # while none runs
    proc = start_collector(REAL_REDIS_URL, sqlite_url, queue, "--shards", str(then))
    try:
        wait_ready(proc)
        wait_until(lambda: stored_ids(sqlite_url) == sent, 60)
    finally:
        assert stop(proc) == 0, proc.log_path.read_text()
    stale.close()
    assert sum(real_redis.xlen(s) for s in names.read_streams(max(first, then))) == 0


def test_a_collector_with_one_shard_publishes_it(settings, fake_redis) -> None:
    fake_redis.set(QueueNames(settings.queue).count, 4)
    run(settings, fake_redis)
    assert fake_redis.get(QueueNames(settings.queue).count) == b"1"
    Emitter(queue=settings.queue, client=fake_redis).emit({"x": 1}, table="t", key="k")
    assert ids_on(fake_redis, settings.queue) == ["k"]


def test_emitters_follow_a_new_published_count(fake_redis, queue, monkeypatch) -> None:
    names = QueueNames(queue)
    fake_redis.set(names.count, 2)
    emitter = Emitter(queue=queue, client=fake_redis)
    assert emitter.shard_count == 2
    fake_redis.set(names.count, 5)
    assert emitter.shard_count == 2  # read a moment ago: not again before FOLLOW seconds
    monkeypatch.setattr(emitter._count, "_ask_after", 0.0)  # FOLLOW seconds later
    assert emitter.shard_count == 5


class ClusterDown(fakeredis.FakeRedis):
    """A Redis Cluster whose slots are not served: every read of a key answers CLUSTERDOWN
    (XADD is left working so a record sent to the wrong stream would show)."""

    down = True

    def get(self, name):
        if self.down:
            raise ClusterDownError("The cluster is down")
        return super().get(name)


def test_an_emitter_started_in_a_cluster_outage_later_routes_by_the_count(
    queue, tmp_path, monkeypatch
) -> None:
    client = ClusterDown(server=fakeredis.FakeServer())
    emitter = Emitter(queue=queue, client=client, emit_timeout=0, spool_dir=tmp_path)
    first = emitter.emit({"x": 1}, key="during")  # no count to route by: spooled, not sent
    assert client.exists(queue) == 0
    client.down = False
    client.set(QueueNames(queue).count, 3)
    monkeypatch.setattr(emitter._count, "_ask_after", 0.0)  # ASK_AGAIN seconds later
    later = [emitter.emit({"x": 1}, key=f"after{i}") for i in range(12)]
    assert client.exists(queue) == 0  # nothing on the unsharded stream, ever
    for i, stream in enumerate(QueueNames(queue).streams(3)):
        assert sorted(ids_on(client, stream)) == sorted(
            k for k in [first, *later] if shard_of(k, 3) == i
        )
    emitter.close()


@given(missing=st.booleans(), count=st.integers(min_value=1, max_value=8))
@hsettings(max_examples=25, deadline=None)
def test_a_known_count_stays_while_the_key_is_missing_or_unreadable(missing, count) -> None:
    client = ClusterDown(server=fakeredis.FakeServer())
    client.down = False
    emitter = Emitter(queue="q", client=client)
    client.set("q:shards", count)
    assert emitter.shard_count == count
    if missing:
        client.delete("q:shards")  # lost with a cluster node
        emitter._count._ask_after = 0.0
        assert emitter.shard_count == count
    else:
        client.down = True
        emitter._count._ask_after = 0.0
        with pytest.raises(ClusterDownError):  # an outage, as a send's: retried or spooled
            _ = emitter.shard_count
        client.down = False
        assert emitter.shard_count == count


@pytest.mark.redis
def test_dead_retry_puts_back_exactly_the_letter_named(real_redis, queue) -> None:
    names = QueueNames(queue)
    real_redis.set(names.count, 3)
    for index in (0, 2):  # one id, two shards' dead letters
        real_redis.xadd(
            names.dead(names.shard(index)), {"m": b"r%d" % index, "reason": "r"}, id="5-0"
        )
    where = ["--redis-url", REAL_REDIS_URL, "--queue", queue]
    both = CliRunner().invoke(main, ["dead", "retry", "5-0", *where])
    assert both.exit_code != 0 and both.stdout == ""
    assert both.stderr.strip().splitlines() == [
        f"Error: dead letter 5-0 is on 2 streams ({names.shard(0)}, {names.shard(2)}): give "
        "--stream to say which"
    ]
    one = CliRunner().invoke(main, ["dead", "retry", "--stream", names.shard(2), "5-0", *where])
    assert one.exit_code == 0, one.output
    assert one.stdout == f"put 1 dead letters back on {queue}\n"
    assert [f[b"m"] for _, f in real_redis.xrange(names.shard(2))] == [b"r2"]
    assert real_redis.xlen(names.shard(0)) == 0
    assert real_redis.xlen(names.dead(names.shard(0))) == 1  # the other one stays
    assert real_redis.xlen(names.dead(names.shard(2))) == 0
    alone = CliRunner().invoke(main, ["dead", "retry", "5-0", *where])  # now unambiguous
    assert alone.exit_code == 0 and real_redis.xlen(names.shard(0)) == 1
    bad = CliRunner().invoke(main, ["dead", "retry", "--stream", "nope", "5-0", *where])
    assert bad.exit_code != 0 and "nope is no stream of this queue" in bad.stderr
