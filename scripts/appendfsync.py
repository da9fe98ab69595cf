"""What ``collector serve --appendfsync`` costs: emit throughput into a private redis-server with
its append-only file fsync'd every second (``everysec``, serve's default) or after every write
(``always``), next to no persistence at all, on the disk under ``--dir``.

    .venv/bin/python scripts/appendfsync.py [--records 10000] [--producers 4] [--dir .]

Three cases per setting: one process calling ``emit`` once per record (one round trip, so one
fsync, per record under ``always``), ``emit_many`` with 1000 records per call, and P producer
processes calling ``emit`` at once (Redis fsyncs once per event-loop pass, so concurrent writers
share an fsync). Prints one table, then each case's rate under ``always`` over ``everysec``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from collector.server.binary import find_redis_server
from collector.server.process import RedisConfig, running
from workers import Emitter

SETTINGS = ("off", "everysec", "always")
MANY = 1000


def emit_one_by_one(url: str, queue: str, count: int) -> list[float]:
    """Seconds each ``emit`` took."""
    emitter = Emitter(url, queue, emit_timeout=5)
    times = []
    for i in range(count):
        began = time.perf_counter()
        emitter.emit({"I": i, "J": 2.0, "K": i * 2.0}, table="ij")
        times.append(time.perf_counter() - began)
    emitter.close()
    return times


def emit_many(url: str, queue: str, count: int) -> float:
    """Seconds for ``count`` records sent MANY per call."""
    emitter = Emitter(url, queue, emit_timeout=5)
    rows = [{"I": i, "J": 2.0, "K": i * 2.0} for i in range(MANY)]
    began = time.perf_counter()
    for _ in range(count // MANY):
        emitter.emit_many(rows, table="ij")
    seconds = time.perf_counter() - began
    emitter.close()
    return seconds


def producer(url: str, queue: str, count: int, start: Any) -> None:
    start.wait()
    emit_one_by_one(url, queue, count)


def concurrent(url: str, queue: str, count: int, producers: int) -> float:
    """Seconds for ``producers`` processes to emit ``count`` records between them."""
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [
        ctx.Process(target=producer, args=(url, queue, count // producers, start))
        for _ in range(producers)
    ]
    for proc in procs:
        proc.start()
    time.sleep(0.5)  # let every producer reach the start line
    began = time.perf_counter()
    start.set()
    for proc in procs:
        proc.join(300)
    return time.perf_counter() - began


def measure(setting: str, directory: Path, records: int, producers: int) -> list[list[str]]:
    binary = find_redis_server()
    config = RedisConfig(
        bind="127.0.0.1", port=0, directory=directory / setting, password="bench",
        persistent=setting != "off", appendfsync="everysec" if setting == "off" else setting,
    )  # fmt: skip
    rows = []
    with running(binary, config) as server:
        url = server.config.local_url()
        emit_one_by_one(url, "bench:warm", 500)  # connections, allocations, the first AOF growth
        times = emit_one_by_one(url, "bench:one", records)
        ms = sorted(t * 1000 for t in times)
        rows.append([setting, "emit, 1 process", records, sum(times), ms])
        many = records * 10
        rows.append([setting, f"emit_many x{MANY}", many, emit_many(url, "bench:many", many)])
        seconds = concurrent(url, "bench:conc", records, producers)
        rows.append([setting, f"emit, {producers} processes", records, seconds])
    table = []
    for row in rows:
        setting_, case, count, seconds = row[:4]
        p50 = p99 = ""
        if len(row) == 5:
            ms = row[4]
            p50 = f"{statistics.median(ms):.3f}"
            p99 = f"{ms[int(len(ms) * 0.99) - 1]:.3f}"
        table.append([setting_, case, f"{count:,}", f"{seconds:.2f}", f"{count / seconds:,.0f}",
                      p50, p99])  # fmt: skip
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10000, help="(emit_many: ten times)")
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument(
        "--dir", type=Path, default=Path("."), help="where the append-only files go (its disk)"
    )
    args = parser.parse_args()
    print(f"redis: {find_redis_server().describe()}; append-only files under {args.dir.resolve()}")
    table = []
    with tempfile.TemporaryDirectory(prefix="appendfsync-", dir=args.dir) as tmp:
        for setting in SETTINGS:
            table += measure(setting, Path(tmp), args.records, args.producers)
    header = ["appendfsync", "case", "records", "seconds", "rate /s", "p50 ms", "p99 ms"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in table:
        print("| " + " | ".join(row) + " |")
    rate = {(r[0], r[1]): float(r[4].replace(",", "")) for r in table}
    for case in dict.fromkeys(r[1] for r in table):
        print(f"{case}: always / everysec = {rate['always', case] / rate['everysec', case]:.2f}, "
              f"everysec / off = {rate['everysec', case] / rate['off', case]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
