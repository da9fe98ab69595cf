"""Real processes for integration tests: producers that emit, and the collector command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

COLLECTOR = str(Path(sys.executable).with_name("collector"))

PRODUCER = """
import sys, workers
name, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    workers.emit({"producer": name, "i": i, "K": i * 0.5}, table="data", key=f"{name}-{i}")
"""


def start_producers(n: int, count: int, redis_url: str, queue: str) -> list[subprocess.Popen]:
    """``n`` processes, each emitting ``count`` records with keys ``p<k>-<i>``."""
    env = {**os.environ, "COLLECTOR_REDIS_URL": redis_url, "COLLECTOR_QUEUE": queue}
    return [
        subprocess.Popen([sys.executable, "-c", PRODUCER, f"p{k}", str(count)], env=env)
        for k in range(n)
    ]


def expected_keys(n: int, count: int) -> set[str]:
    return {f"p{k}-{i}" for k in range(n) for i in range(count)}


def start_collector(redis_url: str, db_url: str, queue: str, *extra: str) -> subprocess.Popen:
    """``collector run`` as its own process; its log goes to ``proc.log_path``."""
    args = [COLLECTOR, "run", "--redis-url", redis_url, "--db-url", db_url, "--queue", queue,
            "--max-wait", "0.1", "--consumer", "it", *extra]  # fmt: skip
    log_path = Path(f"collector-{time.monotonic_ns()}.log").absolute()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(args, stderr=log)
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


def wait_ready(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until the collector has logged its start line (signal handlers are in place)."""
    wait_until(lambda: "collector started" in proc.log_path.read_text(), timeout)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout)


def wait_until(predicate, timeout: float = 60, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
