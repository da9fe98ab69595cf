#!/usr/bin/env python3
"""CPU time per record of each process of the pipelined collector (the reader, the writer) and of
the single-process collector, draining one-entry records into a temporary SQLite file.

CPU time (``time.process_time`` for this process, utime + stime from ``/proc/<pid>/stat`` for
the writer) moves far less with the load of other processes than wall time does, so it shows
which half of the pipeline is the slower one even on a busy machine. Each round fills a private
queue (``cpu:<random>:results``) on the shared Redis with N records sent one entry each, as
``emit`` sends them, and drains it in this process with ``PipelinedCollector.run_once`` (the
writer its own process, as ``collector run --pipeline`` starts it), then with
``Collector.run_once``; the clock runs from after the writer is ready to the last batch taken.
Linux only (``/proc``).

    .venv/bin/python -m scripts.pipeline_cpu -n 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

from collector.daemon import Collector
from collector.pipeline import PipelinedCollector
from collector.settings import Settings
from scripts.bench.common import drop_queue, fill
from workers.settings import DEFAULT_REDIS_URL

TICK = os.sysconf("SC_CLK_TCK")
Figures = dict[str, float]  # name -> value


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.pipeline_cpu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-n", "--count", type=int, default=200_000, help="records per drain")
    parser.add_argument("--rounds", type=int, default=3, help="drains of each mode; medians")
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    if args.count < 1 or args.rounds < 1 or args.batch_size < 1:
        parser.error("--count, --rounds and --batch-size must be at least 1")
    return args


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime: fields 14 and 15


def drain(args: argparse.Namespace, tmp: Path, pipelined: bool) -> Figures:
    """Fill a private queue, drain it: wall seconds and CPU seconds of each process."""
    queue = f"cpu:{uuid.uuid4().hex[:12]}:results"
    fill(args.redis_url, queue, args.count, "fill")
    settings = Settings(
        redis_url=args.redis_url, db_url=f"sqlite:///{tmp / (queue.split(':')[1] + '.db')}",
        queue=queue, consumer="cpu", batch_size=args.batch_size, max_wait=0.05,
        pipeline=pipelined,
    )  # fmt: skip
    collector = PipelinedCollector(settings) if pipelined else Collector(settings)
    client = redis.Redis.from_url(args.redis_url)
    try:
        collector.start()
        writer = collector.writer.proc.pid if isinstance(collector, PipelinedCollector) else None
        w0 = cpu_of(writer) if writer else 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        while collector.counters.records < args.count:
            collector.run_once()
        seconds, reader = time.perf_counter() - t0, time.process_time() - c0
        spent = cpu_of(writer) - w0 if writer else 0.0
        collector.close()
    finally:
        drop_queue(client, queue)
        client.close()
    return {"wall": seconds, "reader": reader, "writer": spent}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    runs: dict[str, list[Figures]] = {"pipelined": [], "single": []}
    with tempfile.TemporaryDirectory(prefix="rc-cpu-") as tmp:
        for _ in range(args.rounds):
            for mode in runs:
                runs[mode].append(drain(args, Path(tmp), mode == "pipelined"))
    per = 1e6 / args.count

    def median(mode: str, name: str) -> float:
        return statistics.median(run[name] for run in runs[mode])

    load = os.getloadavg()[0]
    print(f"{args.count:,} records, one entry each, batch {args.batch_size}, median of "
          f"{args.rounds} round(s); load {load:.1f} at the end")  # fmt: skip
    print("| mode | reader CPU us/record | writer CPU us/record | wall us/record | rate /s |")
    print("|---|---|---|---|---|")
    for mode in runs:
        wall = median(mode, "wall")
        writer = f"{median(mode, 'writer') * per:.2f}" if mode == "pipelined" else "-"
        print(f"| {mode} | {median(mode, 'reader') * per:.2f} | {writer} | {wall * per:.2f} | "
              f"{args.count / wall:,.0f} |")  # fmt: skip
    ratios = [p["wall"] / s["wall"] for p, s in zip(runs["pipelined"], runs["single"], strict=True)]
    shown = ", ".join(f"{1 / r:.2f}" for r in ratios)
    print(f"\npipelined rate / single-process rate by wall clock, per round: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
