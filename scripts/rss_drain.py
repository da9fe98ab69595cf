#!/usr/bin/env python3
"""Peak memory of the collector draining a large backlog: it must not grow with the backlog.

Fills a fresh queue with N records (default 1,000,000), then starts ``collector run`` on a
SQLite file in a temporary directory and samples its memory until the queue is drained. Prints
a table: baseline RSS once started, peak RSS (the kernel's high-water mark, VmHWM), time, rate.

    .venv/bin/python scripts/rss_drain.py                 # Redis at COLLECTOR_REDIS_URL or local
    .venv/bin/python scripts/rss_drain.py -n 200000 --batch-size 5000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import redis
from tqdm import tqdm

from workers import Emitter, xadd
from workers.names import FIELD, QueueNames
from workers.settings import DEFAULT_REDIS_URL

FILL_CHUNK = 10_000


def fill(emitter: Emitter, count: int) -> None:
    """Put ``count`` typical records (a few inputs, a few outputs) on the queue, one stream
    entry each (as ``emit`` sends them), FILL_CHUNK per round trip."""
    with tqdm(total=count, desc="fill", unit="rec") as bar:
        for start in range(0, count, FILL_CHUNK):
            n = min(FILL_CHUNK, count - start)
            payloads = [
                emitter.record(
                    {"alpha": 0.1 * i, "beta": i % 7, "seed": i, "loss": 1.0 / (i + 1), "ok": True}
                ).encode()
                for i in range(start, start + n)
            ]
            xadd.send(emitter.client, emitter.queue, FIELD, payloads)
            bar.update(n)


def high_water_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB, as the kernel counts it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return psutil.Process(pid).memory_info().rss / 2**20


def drain(url: str, queue: str, count: int, batch_size: int, workdir: Path) -> dict[str, float]:
    """Run the collector until the queue is empty; returns its memory and timing figures."""
    client = redis.Redis.from_url(url)
    db_url = f"sqlite:///{workdir / 'rss.db'}"
    argv = [
        sys.executable,
        "-c",
        "import sys; from collector.cli import main; sys.exit(main())",
        "run",
        "--redis-url",
        url,
        "--db-url",
        db_url,
        "--queue",
        queue,
        "--batch-size",
        str(batch_size),
        "--consumer",
        "rss",
    ]
    log = open(workdir / "collector.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(argv, stderr=log)
    started = time.monotonic()
    baseline = 0.0
    try:
        with tqdm(total=count, desc="drain", unit="rec") as bar:
            left = count
            while left > 0:
                if proc.poll() is not None:
                    raise SystemExit(f"collector exited with {proc.returncode}; see {log.name}")
                rss = psutil.Process(proc.pid).memory_info().rss / 2**20
                baseline = baseline or (rss if bar.n > 0 else 0.0)
                left = int(client.xlen(queue))
                bar.update(count - left - bar.n)
                time.sleep(0.2)
        seconds = time.monotonic() - started
        peak = high_water_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
        client.delete(queue, QueueNames.dead(queue))
        client.close()
    return {"baseline": baseline, "peak": peak, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--records", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument(
        "--redis-url", default=os.environ.get("COLLECTOR_REDIS_URL") or DEFAULT_REDIS_URL
    )
    args = parser.parse_args()
    queue = f"rss:{uuid.uuid4().hex[:8]}:results"
    emitter = Emitter(args.redis_url, queue)
    fill(emitter, args.records)
    emitter.close()
    with tempfile.TemporaryDirectory(prefix="rss-drain-") as tmp:
        result = drain(args.redis_url, queue, args.records, args.batch_size, Path(tmp))
    rate = args.records / result["seconds"]
    print()
    print(
        f"{'records':>10} {'batch':>6} {'seconds':>8} {'rec/s':>8} {'RSS start':>10} "
        f"{'RSS peak (VmHWM)':>17}"
    )
    print(
        f"{args.records:>10,} {args.batch_size:>6} {result['seconds']:>8.1f} {rate:>8,.0f} "
        f"{result['baseline']:>7.1f} MiB {result['peak']:>13.1f} MiB"
    )


if __name__ == "__main__":
    main()
