"""A record that kills the collector process is dead-lettered by its delivery count: no crash
loop, and every other record of its batch is stored."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from faults.servers import Process, drained, stored_ids, wait_until
from workers import Emitter

pytestmark = pytest.mark.slow
KILLER = Path(__file__).with_name("killer.py")


def test_a_record_that_kills_the_collector_ends_as_a_dead_letter(
    real_redis, sqlite_url, queue
) -> None:
    url = "redis://127.0.0.1:6379/0"
    emitter = Emitter(url, queue)
    for i in range(50):
        emitter.emit({"i": i}, key=f"a-{i}")
    emitter.emit({"i": -1, "die": True}, key="poison")
    for i in range(50):
        emitter.emit({"i": i}, key=f"b-{i}")
    emitter.close()
    argv = [sys.executable, str(KILLER), "--redis-url", url, "--db-url", sqlite_url]
    argv += ["--queue", queue, "--consumer", "c1", "--max-wait", "0.1"]
    deaths = 0
    for _ in range(8):  # a supervisor restarting the collector (systemd, a Slurm loop)
        proc = Process(argv)

        def ended_or_drained(proc: Process = proc) -> bool:
            return proc.poll() is not None or drained(real_redis, queue)

        try:
            wait_until(ended_or_drained, 60, "a run")
        finally:
            code = proc.stop(timeout=30)
        if code != -9:
            assert code == 0, proc.err
            break
        deaths += 1
    assert deaths == 5
    expected = {f"{p}-{i}" for p in "ab" for i in range(50)}
    assert sorted(stored_ids(sqlite_url)) == sorted(expected)
    ((_, fields),) = real_redis.xrange(f"{queue}:dead")
    assert fields[b"reason"].decode() == (
        "delivered 6 times without being stored (--max-deliveries 5); "
        "last error: none recorded (the collector stopped while holding it)"
    )
