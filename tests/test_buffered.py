"""Buffered emitting: flush on size, timer, flush(), close() and normal exit; the XADD packer."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import time

import pytest
import redis

from tests.helpers import REAL_REDIS_URL
from workers import Emitter, xadd
from workers.buffer import SendBuffer
from workers.entry import decode_records


def stream_ids(client, queue: str) -> list[str]:
    return [r.id for _, f in client.xrange(queue) for r in decode_records(f[b"m"])]


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_buffer_is_sent_when_it_reaches_its_size(fake_redis, queue) -> None:
    emitter = Emitter(queue=queue, client=fake_redis, buffer=3, flush_interval=60)
    ids = [emitter.emit({"i": i}) for i in range(2)]
    assert fake_redis.xlen(queue) == 0
    ids.append(emitter.emit({"i": 2}))
    assert stream_ids(fake_redis, queue) == ids
    emitter.close()


def test_flush_sends_what_is_buffered_in_order(fake_redis, queue) -> None:
    emitter = Emitter(queue=queue, client=fake_redis, buffer=100, flush_interval=60)
    ids = [emitter.emit({"i": 0}), *emitter.emit_many([{"i": 1}, {"i": 2}])]
    assert fake_redis.xlen(queue) == 0
    emitter.flush()
    assert stream_ids(fake_redis, queue) == ids
    emitter.flush()  # nothing left: nothing sent twice
    assert fake_redis.xlen(queue) == 1  # the three in one batch entry, sent once
    emitter.close()


def test_timer_sends_a_lone_record_after_the_interval(fake_redis, queue) -> None:
    emitter = Emitter(queue=queue, client=fake_redis, buffer=100, flush_interval=0.5)
    rid = emitter.emit({"i": 1})
    assert fake_redis.xlen(queue) == 0
    assert wait_for(lambda: fake_redis.xlen(queue) == 1)
    assert stream_ids(fake_redis, queue) == [rid]
    emitter.close()


def test_close_flushes_and_stops_the_timer(fake_redis, queue) -> None:
    emitter = Emitter(queue=queue, client=fake_redis, buffer=100, flush_interval=60)
    emitter.emit({"i": 1})
    thread = emitter._buffer._thread
    emitter.close()
    assert fake_redis.xlen(queue) == 1
    assert thread is not None and not thread.is_alive()


def test_without_buffer_flush_is_a_no_op_and_emit_is_sent_at_once(fake_redis, queue) -> None:
    emitter = Emitter(queue=queue, client=fake_redis)
    emitter.emit({"i": 1})
    emitter.flush()
    assert fake_redis.xlen(queue) == 1


@pytest.mark.parametrize(("size", "interval"), [(-1, 1.0), (10, 0.0), (10, -2.0)])
def test_bad_buffer_settings_are_refused(size: int, interval: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        Emitter(buffer=size, flush_interval=interval)


def test_a_failed_flush_keeps_the_records_for_the_next_one() -> None:
    sent: list[list[bytes]] = []
    failing = [True]

    def send(payloads: list[bytes]) -> None:
        if failing[0]:
            raise redis.ConnectionError("down")
        sent.append(list(payloads))

    buffer = SendBuffer(send, size=2, interval=60)
    buffer.add([b"a"])
    with pytest.raises(redis.ConnectionError):
        buffer.add([b"b"])
    assert len(buffer) == 2 and sent == []
    failing[0] = False
    buffer.flush()
    assert sent == [[b"a", b"b"]] and len(buffer) == 0
    buffer.close()


EXIT_SCRIPT = """
import os, signal, sys
from workers import Emitter
emitter = Emitter(sys.argv[1], sys.argv[2], buffer=100, flush_interval=60)
emitter.emit({"i": 1}, key="one")
emitter.emit({"i": 2}, key="two")
if sys.argv[3] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.redis
def test_normal_exit_flushes_the_buffer(real_redis, queue) -> None:
    subprocess.run([sys.executable, "-c", EXIT_SCRIPT, REAL_REDIS_URL, queue, "exit"], check=True)
    assert stream_ids(real_redis, queue) == ["one", "two"]


@pytest.mark.redis
def test_a_killed_process_loses_its_unflushed_buffer(real_redis, queue) -> None:
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, REAL_REDIS_URL, queue, "kill"])
    assert proc.returncode == -9
    assert real_redis.xlen(queue) == 0


def _child_emits() -> None:
    emitter = _shared[0]  # inherited through the fork, with the parent's unsent record
    emitter.emit({"who": "child"}, key="child")
    emitter.flush()


_shared: list[Emitter] = []


@pytest.mark.redis
def test_a_forked_child_does_not_send_its_parents_buffer(real_redis, queue) -> None:
    emitter = Emitter(REAL_REDIS_URL, queue, buffer=100, flush_interval=60)
    _shared[:] = [emitter]
    emitter.emit({"who": "parent"}, key="parent")
    child = mp.get_context("fork").Process(target=_child_emits)
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert stream_ids(real_redis, queue) == ["child"]
    emitter.close()
    assert stream_ids(real_redis, queue) == ["child", "parent"]


def test_xadd_packs_what_redis_py_would_send() -> None:
    payloads = [b"abc", b"\r\n\x00" * 50]
    expected = b"".join(
        b"".join(redis.Connection().pack_command("XADD", "q:results", "*", "m", p))
        for p in payloads
    )
    assert xadd.pack("q:results", "m", payloads) == expected


def test_an_error_reply_is_raised_and_the_connection_stays_usable(fake_redis, queue) -> None:
    fake_redis.set(queue, "not a stream")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        xadd.send(fake_redis, queue, "m", [b"x", b"y"])
    fake_redis.delete(queue)
    xadd.send(fake_redis, queue, "m", [b"z"])
    assert [f[b"m"] for _, f in fake_redis.xrange(queue)] == [b"z"]
