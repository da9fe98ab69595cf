"""Emitters in real programs: a child forked while a parent thread is inside a send, buffers
flushed when multiprocessing workers end, and which exits keep or lose a buffer."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import redis

import workers
from faults.servers import RedisServer
from workers import Emitter
from workers.entry import decode_records
from workers.spool import Spool, parse

CHILD_TIMEOUT = 20.0  # a child that has not exited by then is deadlocked


def stream_ids(url: str, queue: str) -> list[str]:
    client = redis.Redis.from_url(url)
    try:
        return [r.id for _, fields in client.xrange(queue) for r in decode_records(fields[b"m"])]
    finally:
        client.close()


def fork(child: Callable[[], object]) -> int:
    """Fork; the child runs ``child`` and leaves with ``os._exit`` (0 when it returned)."""
    with warnings.catch_warnings():  # Python 3.12+ warns about forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            child()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def wait_child(pid: int, timeout: float = CHILD_TIMEOUT) -> int | None:
    """The child's exit code, or None (after killing it) when it did not end within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.parametrize("buffer", [0, 100], ids=["unbuffered", "buffered"])
def test_a_child_forked_while_a_thread_is_sending_emits_and_exits(
    redis_server: RedisServer, queue: str, buffer: int
) -> None:
    inside, release = threading.Event(), threading.Event()

    def sleep(_delay: float) -> None:  # the backoff of a send while Redis is down
        inside.set()
        release.wait(CHILD_TIMEOUT)

    emitter = Emitter(
        redis_server.url(), queue, emit_timeout=60, sleep=sleep, buffer=buffer, flush_interval=60
    )

    def parent_sends() -> None:
        emitter.emit({"who": "parent"}, key="parent")
        emitter.flush()  # buffered: the send happens here, under the buffer's lock too

    def child_sends() -> None:
        emitter.emit({"who": "child"}, key="child")
        emitter.flush()

    redis_server.stop()
    sender = threading.Thread(target=parent_sends)
    sender.start()
    try:
        assert inside.wait(10), "the parent's send never reached its backoff"
        redis_server.start()
        child = fork(child_sends)  # the parent's thread holds the send path right now
        assert wait_child(child) == 0
        assert stream_ids(redis_server.url(), queue) == ["child"]
    finally:
        release.set()
        sender.join(CHILD_TIMEOUT)
    assert stream_ids(redis_server.url(), queue) == ["child", "parent"]
    emitter.close()


def test_a_child_forked_while_the_default_emitter_is_built_emits_and_exits(
    redis_server: RedisServer, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLLECTOR_REDIS_URL", redis_server.url())
    monkeypatch.setenv("COLLECTOR_QUEUE", queue)
    holding, release = threading.Event(), threading.Event()

    def build_slowly() -> None:  # stands for a parent thread inside default_emitter()
        with workers.api._lock:
            holding.set()
            release.wait(CHILD_TIMEOUT)

    builder = threading.Thread(target=build_slowly)
    builder.start()
    try:
        assert holding.wait(10)
        child = fork(lambda: workers.emit({"who": "child"}, key="child"))
        assert wait_child(child) == 0
    finally:
        release.set()
        builder.join(CHILD_TIMEOUT)
    assert stream_ids(redis_server.url(), queue) == ["child"]


def test_a_child_forked_during_a_spool_flush_does_not_keep_the_spool_locked(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    spool.append("q", [b"one"])
    inside, release = threading.Event(), threading.Event()

    def send(_queue: str, _payloads: list[bytes]) -> None:  # Redis still away
        inside.set()
        release.wait(CHILD_TIMEOUT)
        raise redis.ConnectionError("down")

    def flush() -> None:
        with contextlib.suppress(redis.ConnectionError):
            spool.flush(send)

    flusher = threading.Thread(target=flush)
    flusher.start()
    assert inside.wait(10)
    read_end, write_end = os.pipe()
    child = fork(lambda: os.read(read_end, 1))  # lives, holding a copy of the locked file
    try:
        release.set()
        flusher.join(CHILD_TIMEOUT)
        appender = threading.Thread(target=spool.append, args=("q", [b"two"]))
        appender.start()
        appender.join(5)
        assert not appender.is_alive(), "the append waits for the child's copy of the lock"
    finally:
        os.write(write_end, b"x")
        assert wait_child(child) == 0
    assert [payload for path in spool.files() for _, payload in parse(path.read_bytes())[0]] == [
        b"one",
        b"two",
    ]


_emitters: dict[str, Emitter] = {}


def _buffered_emit(url: str, queue: str, key: str) -> None:
    """A job emitting through a per-process buffered emitter it never flushes itself."""
    if queue not in _emitters:
        _emitters[queue] = Emitter(url, queue, buffer=1000, flush_interval=60)
    _emitters[queue].emit({"key": key}, key=key)


def _buffered_task(args: tuple[str, str, str]) -> None:
    _buffered_emit(*args)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_multiprocessing_process_flushes_its_buffer_when_it_ends(
    redis_server: RedisServer, queue: str, method: str
) -> None:
    process = mp.get_context(method).Process(
        target=_buffered_emit, args=(redis_server.url(), queue, "one")
    )
    process.start()
    process.join(CHILD_TIMEOUT)
    assert process.exitcode == 0
    assert stream_ids(redis_server.url(), queue) == ["one"]


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("tasks_per_child", [None, 3])
def test_pool_workers_flush_their_buffers_at_close_and_join(
    redis_server: RedisServer, queue: str, method: str, tasks_per_child: int | None
) -> None:
    tasks = [(redis_server.url(), queue, f"task-{i}") for i in range(20)]
    pool = mp.get_context(method).Pool(2, maxtasksperchild=tasks_per_child)
    try:
        pool.map(_buffered_task, tasks, chunksize=1)
        pool.close()
        pool.join()
    finally:
        pool.terminate()
    assert sorted(stream_ids(redis_server.url(), queue)) == sorted(t[2] for t in tasks)


def test_process_pool_executor_workers_flush_their_buffers_at_shutdown(
    redis_server: RedisServer, queue: str
) -> None:
    tasks = [(redis_server.url(), queue, f"task-{i}") for i in range(20)]
    with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
        list(pool.map(_buffered_task, tasks))
    assert sorted(stream_ids(redis_server.url(), queue)) == sorted(t[2] for t in tasks)


EXIT_SCRIPT = """
import os, signal, sys, time
from workers import Emitter
emitter = Emitter(sys.argv[1], sys.argv[2], buffer=100, flush_interval=60)
emitter.emit({"i": 1}, key="buffered")
exec(sys.argv[3])
"""


def kill(name: str) -> str:
    return f"os.kill(os.getpid(), signal.{name}); time.sleep(9)"


TERM_HANDLER = "signal.signal(signal.SIGTERM, lambda *_: sys.exit(143)); "
EXITS = {  # how a process ends -> (its exit code, whether the buffer reached Redis)
    "end of script": ("pass", 0, True),
    "sys.exit": ("sys.exit(3)", 3, True),
    "uncaught exception": ("raise RuntimeError('boom')", 1, True),
    "SIGINT (KeyboardInterrupt)": (kill("SIGINT"), -2, True),
    "SIGTERM with a handler calling sys.exit": (TERM_HANDLER + kill("SIGTERM"), 143, True),
    "SIGTERM without a handler": (kill("SIGTERM"), -15, False),
    "SIGHUP without a handler": (kill("SIGHUP"), -1, False),
    "SIGKILL": (kill("SIGKILL"), -9, False),
    "os._exit": ("os._exit(0)", 0, False),
}


@pytest.mark.parametrize("way", list(EXITS))
def test_which_exits_flush_a_buffer(redis_server: RedisServer, queue: str, way: str) -> None:
    code, returncode, flushed = EXITS[way]
    argv = [sys.executable, "-c", EXIT_SCRIPT, redis_server.url(), queue, code]
    proc = subprocess.run(argv, capture_output=True, timeout=60)
    assert proc.returncode == returncode, proc.stderr.decode()[-2000:]
    assert stream_ids(redis_server.url(), queue) == (["buffered"] if flushed else [])
