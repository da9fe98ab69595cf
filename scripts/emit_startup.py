"""What one ``collector emit`` costs a shell loop, next to the Python way: a fresh process that
sends one record, as ``collector emit --table t x=1`` and as ``python -c 'import workers;
workers.emit(...)'``, run alternately against the same Redis (a private queue, deleted after).

    .venv/bin/python scripts/emit_startup.py [--runs 10] [--redis-url redis://127.0.0.1:6379/0]

Prints each way's median and best wall time and their ratio (the aim: the command within 1.5x
of the Python way, since both start an interpreter and import redis and the emitter).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis

BIN = Path(sys.executable).parent
PYTHON_WAY = "import workers; workers.emit({'x': 1}, table='t')"


def seconds(argv: list[str], env: dict[str, str]) -> float:
    """Wall time of one run of ``argv`` (which must succeed)."""
    began = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def main() -> None:
    """Time both ways, alternating, and print the table and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each way")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    queue = f"emit-startup:{uuid.uuid4().hex[:12]}:results"
    env = {**os.environ, "COLLECTOR_REDIS_URL": args.redis_url, "COLLECTOR_QUEUE": queue}
    ways = {
        "collector emit --table t x=1": [str(BIN / "collector"), "emit", "--table", "t", "x=1"],
        "python -c 'import workers; workers.emit(...)'": [sys.executable, "-c", PYTHON_WAY],
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for _ in range(args.runs):
            for name, argv in ways.items():
                times[name].append(seconds(argv, env))
    finally:
        redis.Redis.from_url(args.redis_url).delete(queue)
    print("| way | runs | median s | best s |")
    print("|---|---|---|---|")
    for name, taken in times.items():
        print(f"| `{name}` | {len(taken)} | {statistics.median(taken):.3f} | {min(taken):.3f} |")
    cli, python = (statistics.median(taken) for taken in times.values())
    print(f"\ncollector emit / workers.emit, medians: {cli / python:.2f}x (aim: <= 1.5x)")


if __name__ == "__main__":
    main()
