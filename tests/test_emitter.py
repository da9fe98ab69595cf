"""Emitter and the module-level emit: what goes on the stream, settings, forks."""

from __future__ import annotations

import os
import threading

import pytest

import workers
from workers import Emitter
from workers.entry import decode_records
from workers.errors import EncodeError
from workers.record import Record


def stream_records(client, queue: str) -> list[Record]:
    return [r for _, f in client.xrange(queue) for r in decode_records(f[b"m"])]


def test_emit_puts_one_record_on_the_queue(fake_redis, queue) -> None:
    emitter = Emitter(queue=queue, client=fake_redis)
    rid = emitter.emit({"I": 1, "K": 2.0}, table="data")
    (rec,) = stream_records(fake_redis, queue)
    assert rec.id == rid and rec.table == "data" and rec.data == {"I": 1, "K": 2.0}
    assert rec.pid == os.getpid() and rec.host


def test_emit_returns_the_key_when_given(fake_redis, queue) -> None:
    assert Emitter(queue=queue, client=fake_redis).emit({"x": 1}, key="abc") == "abc"
    assert stream_records(fake_redis, queue)[0].id == "abc"


def test_non_mapping_result_goes_to_result_column(fake_redis, queue) -> None:
    Emitter(queue=queue, client=fake_redis).emit(3.5)
    assert stream_records(fake_redis, queue)[0].data == {"result": 3.5}


def test_emit_many_sends_all_in_order(fake_redis, queue) -> None:
    ids = Emitter(queue=queue, client=fake_redis).emit_many([{"i": i} for i in range(5)])
    recs = stream_records(fake_redis, queue)
    assert [r.id for r in recs] == ids and [r.data["i"] for r in recs] == list(range(5))


def test_bad_key_and_unsupported_value_raise_before_sending(fake_redis, queue) -> None:
    emitter = Emitter(queue=queue, client=fake_redis)
    with pytest.raises(EncodeError, match="key must be"):
        emitter.emit({"x": 1}, key="")
    with pytest.raises(EncodeError, match="cannot store a value of type object"):
        emitter.emit({"x": {1: object()}})
    assert fake_redis.xlen(queue) == 0


def test_default_emitter_reads_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("COLLECTOR_REDIS_URL", "redis://:s3cret@example.invalid:6390/2")
    monkeypatch.setenv("COLLECTOR_QUEUE", "q:env")
    workers.reset()
    emitter = workers.default_emitter()
    assert (emitter.redis_url, emitter.queue) == ("redis://:s3cret@example.invalid:6390/2", "q:env")
    assert "s3cret" not in repr(emitter)
    assert workers.default_emitter() is emitter


@pytest.mark.redis
def test_default_emitter_works_in_forked_children(real_redis, queue, monkeypatch) -> None:
    monkeypatch.setenv("COLLECTOR_QUEUE", queue)
    workers.emit({"who": "parent"})  # the parent's connection exists before the fork
    pids = []
    for i in range(3):
        pid = os.fork()
        if pid == 0:  # child: must not reuse the parent's socket
            try:
                workers.emit({"who": "child", "i": i})
            finally:
                os._exit(0)
        pids.append(pid)
    assert all(os.waitpid(p, 0)[1] == 0 for p in pids)
    workers.emit({"who": "parent-again"})
    recs = stream_records(real_redis, queue)
    assert sorted(r.data.get("i", -1) for r in recs) == [-1, -1, 0, 1, 2]
    assert {r.pid for r in recs if r.data["who"] == "child"} == set(pids)


def test_threads_sharing_an_emitter_send_at_the_same_time(fake_redis, queue) -> None:
    """Nothing serialises the threads' sends more than the socket requires: four threads are
    inside a send at once (a barrier they all must reach), then their records arrive."""
    emitter = Emitter(queue=queue, client=fake_redis)
    inside = threading.Barrier(4, timeout=10)
    send = emitter._xadd

    def meeting(queue: str, payloads: list[bytes]) -> None:
        inside.wait()  # raises BrokenBarrierError if the sends were serialised
        send(queue, payloads)

    emitter._xadd = meeting  # type: ignore[method-assign]
    failures: list[BaseException] = []

    def job(n: int) -> None:
        try:
            emitter.emit({"n": n}, key=f"k{n}")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert failures == []
    ids = {decode_records(f[b"m"])[0].id for _id, f in fake_redis.xrange(queue)}
    assert ids == {"k0", "k1", "k2", "k3"}
