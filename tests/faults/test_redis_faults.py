"""Redis faults the collector survives: a restart without persistence (the consumer group is
gone), and a Redis at maxmemory with a backlog (acknowledgements must still get through)."""

from __future__ import annotations

import signal

import pytest
import redis

from collector.errors import RET_CONFIG
from faults.servers import (
    RedisServer,
    collector,
    drained,
    start_collector,
    wait_for_rows,
    wait_until,
)
from workers import Emitter

pytestmark = pytest.mark.slow


def test_redis_restart_without_persistence_is_survived(tmp_path, sqlite_url, queue, mode) -> None:
    server = RedisServer(tmp_path / "redis", "--appendonly", "no")
    server.start()
    daemon = start_collector(server.url(), sqlite_url, queue)
    emitter = Emitter(server.url(), queue)
    try:
        for i in range(100):
            emitter.emit({"i": i}, key=f"before-{i}")
        wait_for_rows(sqlite_url, {f"before-{i}" for i in range(100)}, 30)
        server.stop(signal.SIGKILL)
        server.start()  # empty: no stream, no consumer group
        for i in range(100):
            emitter.emit({"i": i}, key=f"after-{i}")
        expected = {f"{when}-{i}" for when in ("before", "after") for i in range(100)}
        wait_for_rows(sqlite_url, expected, 30)
    finally:
        emitter.close()
        assert daemon.stop() == 0, daemon.err
        server.stop()
    assert "was gone (Redis restarted without persistence" in daemon.err
    assert "records queued before may have been lost inside Redis" in daemon.err


def test_a_redis_at_maxmemory_with_a_backlog_drains(tmp_path, sqlite_url, queue, mode) -> None:
    server = RedisServer(
        tmp_path / "redis", "--appendonly", "no",
        "--maxmemory", "3mb", "--maxmemory-policy", "noeviction",
    )  # fmt: skip
    server.start()
    client = redis.Redis.from_url(server.url())
    daemon = start_collector(server.url(), sqlite_url, queue)  # creates the consumer group
    assert daemon.stop() == 0
    emitter = Emitter(server.url(), queue, emit_timeout=0)
    keys: set[str] = set()
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            while True:  # fill Redis until it refuses writes
                client.xadd(queue, {"m": b"\xc1 poison"})  # each one a dead letter: an XADD
                for key in [f"k{len(keys) + i}" for i in range(200)]:
                    client.xadd(queue, {"m": emitter.record({"v": 1.5}, key=key).encode()})
                    keys.add(key)
        assert len(keys) > 1000
        daemon = start_collector(server.url(), sqlite_url, queue)
        try:
            wait_for_rows(sqlite_url, keys, 60)
            wait_until(lambda: drained(client, queue), 30, "the stream to drain")
            dead = client.xlen(f"{queue}:dead")
            assert dead == len(keys) // 200 + 1  # one poison entry before each 200
        finally:
            assert daemon.stop() == 0, daemon.err
    finally:
        emitter.close()
        client.close()
        server.stop()


def test_wrong_credentials_end_the_daemon_with_one_line(tmp_path, sqlite_url, queue, mode) -> None:
    server = RedisServer(tmp_path / "redis", "--appendonly", "no", "--requirepass", "right-Pw9")
    server.start(ping_url=server.url(":right-Pw9@"))
    try:
        daemon = collector(
            "run", "--redis-url", server.url(":wrong-Pw7@"), "--db-url", sqlite_url,
            "--queue", queue,
        )  # fmt: skip
        assert daemon.stop(None, timeout=30) == RET_CONFIG
    finally:
        server.stop()
    (last,) = [line for line in daemon.err.splitlines() if line.startswith("Error:")]
    assert last.startswith(f"Error: redis at redis://:***@127.0.0.1:{server.port}/0 refused")
    assert "wrong-Pw7" not in daemon.err and "Traceback" not in daemon.err
