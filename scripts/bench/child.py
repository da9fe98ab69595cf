"""A collector in its own interpreter, for the benchmark: runs until it has taken ``--expect``
records, then prints one JSON line (times, batches, peak RSS). Prints ``{"ready": ...}`` first.
Its first line on stdin is a JSON map of ``redis_url`` and ``db_url``.
With ``--pipeline`` it is the pipelined collector; its peak RSS is then the pair's (the reader's
peak plus the writer's, an upper bound: the two peaks need not coincide)."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from collector.daemon import Collector
from collector.errors import DatabaseUnavailable
from collector.pipeline import PipelinedCollector
from collector.settings import Settings


def peak_rss_mib(pid: int | str = "self") -> float:
    """Peak resident memory of this interpreter (or process ``pid``): VmHWM (getrusage's maxrss
    also counts the parent's memory at the fork that started us)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size)
    parser.add_argument("--max-wait", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--consumer", default="bench")
    parser.add_argument("--pipeline", action="store_true", help="the pipelined collector")
    parser.add_argument(
        "--until-empty",
        action="store_true",
        help="instead of --expect: after a line on stdin (go), run until the queue is empty",
    )
    args = parser.parse_args()
    urls = json.loads(sys.stdin.readline())  # not in argv: they may hold passwords
    settings = Settings(
        redis_url=urls["redis_url"],
        db_url=urls["db_url"],
        queue=args.queue,
        consumer=args.consumer,
        batch_size=args.batch_size,
        max_wait=args.max_wait,
        shards=args.shards,
        pipeline=args.pipeline,
    )
    collector = PipelinedCollector(settings) if args.pipeline else Collector(settings)
    collector.start()
    print(json.dumps({"ready": time.time()}), flush=True)
    if args.until_empty:
        sys.stdin.readline()  # every collector of the run starts at once
    counters = collector.counters
    t0, wall0 = time.perf_counter(), time.time()
    first_commit = last_commit = None
    deadline = time.monotonic() + args.timeout
    while (args.until_empty or counters.records < args.expect) and time.monotonic() < deadline:
        done = counters.records
        try:
            taken = collector.run_once()
        except DatabaseUnavailable:  # two collectors creating the table at once: the loser waits
            time.sleep(0.05)
            continue
        if counters.records > done:  # a commit (pipelined: of a batch read before, maybe)
            last_commit = time.time()
            first_commit = first_commit or last_commit
        elif not taken and args.until_empty and collector.reader.backlog() == 0:
            break
    seconds = time.perf_counter() - t0
    peak = peak_rss_mib()
    if isinstance(collector, PipelinedCollector) and collector.writer.proc is not None:
        peak += peak_rss_mib(collector.writer.proc.pid)
    collector.close()
    report = {
        "records": counters.records,
        "stored": counters.stored,
        "dead": counters.dead,
        "batches": counters.batches,
        "seconds": seconds,
        "started": wall0,
        "first_commit": first_commit,
        "last_commit": last_commit,
        "peak_rss_mib": peak,
    }
    print(json.dumps(report), flush=True)
    sys.exit(0 if args.until_empty or counters.records >= args.expect else 1)


if __name__ == "__main__":
    main()
