#!/usr/bin/env python3
"""Where the collector's time goes per record: ``Collector.run_once`` draining one-entry records
into a temporary SQLite file, against the serialized ceiling's own phases, in one process.

Fills a private queue (``profile:<random>:results``) on the shared Redis with N records sent one
entry each, as ``emit`` sends them, then drains it with the collector, either timed phase by
phase (``--phases``: a clock around a few calls per batch, so the figures stay near the real
speed) or under cProfile (the top functions by own time). The ceiling's phases are the bench's
(scripts/bench/ceiling.py): redis-py XREADGROUP, ``msgpack.unpackb``, XACK + XDEL, then stdlib
sqlite3 ``executemany`` of ready tuples and a commit, library calls only.

    .venv/bin/python -m scripts.profile_drain -n 100000            # cProfile, top 30 by tottime
    .venv/bin/python -m scripts.profile_drain -n 200000 --phases --rounds 3
    .venv/bin/python -m scripts.profile_drain --db-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import redis
from sqlalchemy.engine.default import DefaultDialect

from collector.batch import Batch
from collector.daemon import Collector
from collector.reader import StreamReader
from collector.settings import Settings
from collector.store.store import Store
from collector.store.writers import Layout
from collector.stream import Stream
from scripts.bench import ceiling
from scripts.bench.common import drop_queue, fill
from workers.settings import DEFAULT_REDIS_URL

Phases = dict[str, float]  # phase -> seconds in all
CPU = "CPU time of this process"  # not a phase: the load of other processes hardly moves it


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.profile_drain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-n", "--count", type=int, default=100_000, help="records per drain")
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--db-url", help="drain into this database instead of a temp SQLite")
    parser.add_argument("--phases", action="store_true", help="phase table instead of cProfile")
    parser.add_argument("--rounds", type=int, default=1, help="--phases: drains, median taken")
    parser.add_argument("--top", type=int, default=30, help="cProfile: functions shown")
    parser.add_argument("--sort", default="tottime", help="cProfile: pstats sort key")
    args = parser.parse_args(argv)
    if args.count < 1 or args.rounds < 1 or args.batch_size < 1:
        parser.error("--count, --rounds and --batch-size must be at least 1")
    return args


class Clock:
    """Seconds spent in named phases, summed over calls; a phase inside another is counted as
    its own, not as its parent's."""

    def __init__(self) -> None:
        self.spent: Phases = defaultdict(float)
        self._inner = [0.0]  # per open phase: seconds its nested phases took
        self.cpu = 0.0  # this process's CPU seconds inside outermost phases

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._inner.append(0.0)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            took = time.perf_counter() - t0
            self.spent[name] += took - self._inner.pop()
            self._inner[-1] += took
            if len(self._inner) == 1:
                self.cpu += time.process_time() - c0

    def wrap(self, owner: Any, attr: str, name: str) -> Callable[[], None]:
        """Time every call of ``owner.attr`` as phase ``name``; returns the undo."""
        original = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attr, timed)
        return lambda: setattr(owner, attr, original)


def collector_drain(args: argparse.Namespace, tmp: Path, mode: str) -> tuple[float, Any]:
    """Fill a private queue, drain it with ``run_once``: (seconds, phases or the profile)."""
    queue = f"profile:{uuid.uuid4().hex[:12]}:results"
    db_url = args.db_url or f"sqlite:///{tmp / (queue.split(':')[1] + '.db')}"
    fill(args.redis_url, queue, args.count, "fill")
    settings = Settings(
        redis_url=args.redis_url, db_url=db_url, queue=queue, consumer="profile",
        batch_size=args.batch_size, max_wait=0.05,
    )  # fmt: skip
    client = redis.Redis.from_url(args.redis_url)
    collector = Collector(settings)
    clock, undo = Clock(), []
    if mode == "phases":
        for owner, attr, name in (
            (Stream, "receive", "redis read (reply wait + parse)"),
            (Batch, "decode", "unpack + validate + records"),
            (Store, "_plan", "plan (schema check)"),
            (Store, "_insert", "rows + insert"),
            (Layout, "rows", "row tuples"),
            (StreamReader, "finish", "ack + delete"),
            (StreamReader, "read_ahead", "read-ahead send"),
            (DefaultDialect, "do_commit", "commit"),
        ):
            undo.append(clock.wrap(owner, attr, name))
    profile = cProfile.Profile()
    try:
        collector.start()
        counters = collector.counters
        t0, c0 = time.perf_counter(), time.process_time()
        if mode == "profile":
            profile.enable()
        while counters.records < args.count:
            collector.run_once()
        profile.disable()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        collector.close()
    finally:
        for step in undo:
            step()
        drop_queue(client, queue)
        client.close()
    if mode == "phases":
        inside = sum(clock.spent.values())
        clock.spent["other (transaction, run_once, counting)"] = seconds - inside
        return seconds, {**clock.spent, CPU: cpu}
    return seconds, profile


def ceiling_drain(args: argparse.Namespace, tmp: Path) -> tuple[float, Phases]:
    """The serialized ceiling's phases: the bench's redis drain, then its sqlite executemany."""
    queue = f"profile:{uuid.uuid4().hex[:12]}:results"
    fill(args.redis_url, queue, args.count, "fill (ceiling)")
    client = redis.Redis.from_url(args.redis_url)
    clock = Clock()
    try:
        client.xgroup_create(queue, "ceiling", id="0")
        while True:
            with clock.phase("redis read (reply wait + parse)"):
                reply: Any = client.xreadgroup(
                    "ceiling", "ceiling", {queue: ">"}, count=args.batch_size
                )
            if not reply:
                break
            entries = reply[0][1]
            with clock.phase("unpack + validate + records"):
                for _mid, fields in entries:
                    msgpack.unpackb(fields[b"m"], raw=False, timestamp=3)
            with clock.phase("ack + delete"):
                ids = [mid for mid, _fields in entries]
                pipe = client.pipeline(transaction=False)
                pipe.xack(queue, "ceiling", *ids)
                pipe.xdel(queue, *ids)
                pipe.execute()
    finally:
        drop_queue(client, queue)
        client.close()
    path = tmp / f"ceiling-{uuid.uuid4().hex[:8]}.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(ceiling.SQLITE_DDL)
    conn.commit()
    data = [(r[0], r[1].isoformat(sep=" "), *r[2:]) for r in ceiling.rows(args.count)]
    sql = f'INSERT INTO "{ceiling.TABLE}" ({ceiling.COLUMNS}) VALUES ({ceiling.MARKS})'  # noqa: S608
    with clock.phase("rows + insert"):
        conn.executemany(sql, data)
    with clock.phase("commit"):
        conn.commit()
    conn.close()
    return sum(clock.spent.values()), {**clock.spent, CPU: clock.cpu}


def print_phases(args: argparse.Namespace, tmp: Path) -> None:
    """The median over ``--rounds`` of each phase, us/record, ceiling and collector alternating."""
    ceilings: list[Phases] = []
    collectors: list[Phases] = []
    for _ in range(args.rounds):
        ceilings.append({"total": (c := ceiling_drain(args, tmp))[0], **c[1]})
        seconds, spent = collector_drain(args, tmp, "phases")
        collectors.append({"total": seconds, **spent})
    names = list(dict.fromkeys([*collectors[0], *ceilings[0]]))
    names.remove("total")
    names.remove(CPU)
    per = 1e6 / args.count

    def median(runs: list[Phases], name: str) -> float:
        return statistics.median(run.get(name, 0.0) for run in runs) * per

    rows = [(name, median(ceilings, name), median(collectors, name)) for name in names]
    rows.append(("total (wall clock)", median(ceilings, "total"), median(collectors, "total")))
    rows.append((CPU, median(ceilings, CPU), median(collectors, CPU)))
    print(f"{args.count:,} records, one entry each, batch {args.batch_size}, "
          f"median of {args.rounds} round(s), us/record")  # fmt: skip
    print("| phase | ceiling | collector |")
    print("|---|---|---|")
    for name, ceil, coll in rows:
        print(f"| {name} | {ceil:.2f} | {coll:.2f} |")
    print()
    for what, key in (("wall clock", "total"), ("CPU time", CPU)):
        ratios = [c[key] / k[key] for c, k in zip(ceilings, collectors, strict=True)]
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"collector rate / serialized ceiling by {what}, per round: {shown}")


def print_profile(args: argparse.Namespace, tmp: Path) -> None:
    seconds, profile = collector_drain(args, tmp, "profile")
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats(args.sort).print_stats(args.top)
    calls = stats.total_calls  # type: ignore[attr-defined]
    print(f"{args.count:,} records in {seconds:.2f} s under cProfile "
          f"({seconds / args.count * 1e6:.1f} us/record), {calls:,} calls "
          f"({calls / args.count:.1f} a record)")  # fmt: skip
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="rc-profile-") as tmp:
        if args.phases:
            print_phases(args, Path(tmp))
        else:
            print_profile(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
