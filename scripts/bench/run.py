"""The benchmark command: options, every case in one run, the report (see the package docstring)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

import scripts.bench
from collector.settings import Settings
from scripts.bench import ceiling, daskway, memory, mysql, pipeline, report, seed, sharded
from scripts.bench.common import Sizes, drop_queue, environment, temp_pg_database, unique_queue

CASES = (
    "seed-direct",
    "seed-json",
    "ceiling",
    "drain",
    "end-to-end",
    "emit",
    "memory",
    "dask",
    "shards",
    "mariadb",
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        description=scripts.bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: the run takes < 1 min")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply record counts and durations (> 0)"
    )
    parser.add_argument("--only", default=",".join(CASES), help="comma-separated cases to run")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL setups")
    parser.add_argument(
        "--batch-size", type=int, default=Settings.batch_size, help="the collector's batch size"
    )
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--out", default="bench-results", help="folder for JSON and PNG")
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--mysql-url", default=MYSQL_URL, help="MariaDB for the mariadb case")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(CASES)
    if unknown:
        parser.error(
            f"unknown case(s) {', '.join(sorted(unknown))}; choose from {', '.join(CASES)}"
        )
    if args.scale <= 0:
        parser.error("--scale must be positive")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


class Bench:
    """Runs the chosen cases, keeping every measurement as a row."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.sizes = Sizes.pick(args.quick, args.scale)
        self.cases = set(args.only.split(","))
        self.tmp = tmp
        self.rows: list[dict[str, Any]] = []
        self.client = redis.Redis.from_url(args.redis_url)
        self.queues: list[str] = []

    def add(self, case: str, setup: str, measure: Callable[[], dict[str, Any]]) -> None:
        print(f"[bench] {case} {setup} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        row = {"case": case, "setup": setup, **measure()}
        self.rows.append(row)
        print(
            f"[bench] {case} {setup}: {row['rate']:,.0f}/s ({time.perf_counter() - t0:.1f} s)",
            file=sys.stderr,
            flush=True,
        )

    def queue(self) -> str:
        name = unique_queue()
        self.queues.append(name)
        return name

    def pg(self) -> Any:
        return temp_pg_database(self.args.pg_url)

    def run(self) -> None:
        try:
            for case in CASES:
                if case in self.cases:
                    getattr(self, "case_" + case.replace("-", "_"))()
        finally:
            for name in self.queues:
                drop_queue(self.client, name)
            self.client.close()

    def case_seed_direct(self) -> None:
        s = self.sizes
        for w in s.writers:
            for mode, wal in (("wal", True), ("default", False)):
                url = seed.sqlite_file(self.tmp, f"seed-{mode}-{w}", wal)
                self.add(
                    "seed-direct",
                    f"sqlite-{mode} W={w}",
                    lambda u=url, n=w: seed.seed_direct(u, n, s.seed_seconds),
                )
            if not self.args.no_postgres:
                with self.pg() as url:
                    self.add(
                        "seed-direct",
                        f"postgresql W={w}",
                        lambda u=url, n=w: seed.seed_direct(u, n, s.seed_seconds),
                    )

    def case_seed_json(self) -> None:
        for n in self.sizes.json_counts:
            self.add("seed-json", f"N={n}", lambda n=n: seed.seed_json(self.tmp, n))

    def case_ceiling(self) -> None:
        n = self.sizes.backlog
        self.add("ceiling", "sqlite-executemany", lambda: ceiling.sqlite_executemany(self.tmp, n))
        redis_url = self.args.redis_url
        self.add("ceiling", "redis-drain", lambda: ceiling.redis_drain(redis_url, self.queue(), n))
        if not self.args.no_postgres:
            with self.pg() as url:
                self.add("ceiling", "pg-copy", lambda: ceiling.pg_copy(url, n))
            with self.pg() as url:
                self.add("ceiling", "pg-copy per 2000", lambda: ceiling.pg_copy(url, n, 2000))

    def _drain(
        self, setup: str, db_url: str, count: int, batched: bool = False, pipelined: bool = False
    ) -> None:
        redis_url = self.args.redis_url
        batch = self.args.batch_size
        self.add(
            "drain",
            setup + (" pipelined" if pipelined else ""),
            lambda: pipeline.drain(
                redis_url, db_url, self.queue(), count, batch, batched=batched, pipelined=pipelined
            ),
        )

    def case_drain(self) -> None:
        """Each SQLite setup single-process, then pipelined (collector run --pipeline), in the
        same run against the same ceilings; PostgreSQL single-process."""
        s = self.sizes
        for setup, stem, batched in (("sqlite", "drain", False), ("sqlite batched", "v2", True)):
            self._drain(setup, self._sqlite(stem), s.backlog, batched)
            self._drain(setup, self._sqlite(f"{stem}-pipe"), s.backlog, batched, pipelined=True)
        if not self.args.no_postgres:
            for setup, batched in (("postgresql", False), ("postgresql batched", True)):
                with self.pg() as url:
                    self._drain(setup, url, s.backlog, batched)
        if s.rss_backlog and s.rss_backlog != s.backlog:
            for pipelined in (False, True):
                db_url = self._sqlite(f"rss{'-pipe' if pipelined else ''}")
                self._drain("sqlite rss", db_url, s.rss_backlog, pipelined=pipelined)

    def _sqlite(self, stem: str) -> str:
        return f"sqlite:///{self.tmp / f'{stem}.db'}"

    def case_end_to_end(self) -> None:
        for p in self.sizes.producers:
            for pipelined in (False, True):
                url = self._sqlite(f"e2e-{p}{'-pipe' if pipelined else ''}")
                self.add(
                    "end-to-end",
                    f"P={p} sqlite{' pipelined' if pipelined else ''}",
                    lambda u=url, p=p, m=pipelined: self._end_to_end(u, p, m),
                )

    def _end_to_end(self, db_url: str, producers: int, pipelined: bool) -> dict[str, Any]:
        return pipeline.end_to_end(
            self.args.redis_url,
            db_url,
            self.queue(),
            producers,
            self.sizes.e2e_records,
            self.args.batch_size,
            pipelined,
        )

    def case_emit(self) -> None:
        def measure() -> dict[str, Any]:
            result = pipeline.emit_cost(self.args.redis_url, self.queue(), self.sizes.emit_calls)
            return {**result, "seconds": 0.0, "rate": 1e6 / result["emit_p50_us"]}

        self.add("emit", "loopback", measure)

    def case_memory(self) -> None:
        n, url = self.sizes.memory_records, self.args.redis_url
        for setup, batched in (("v1 one entry each", False), ("v2 batch entries", True)):
            self.add("memory", setup,
                     lambda b=batched: memory.per_record(url, self.queue(), n, b))  # fmt: skip

    def case_dask(self) -> None:
        n, redis_url = daskway.count(self.args.quick, self.args.scale), self.args.redis_url
        queue, db_url = self.queue(), f"sqlite:///{self.tmp / 'dask.db'}"
        with daskway.cluster(redis_url, queue) as client:
            self.add("dask", f"json N={n}", lambda: daskway.dask_json(client, self.tmp, n))
            self.add(
                "dask",
                f"emit N={n}",
                lambda: daskway.dask_emit(
                    client, redis_url, db_url, queue, n, self.args.batch_size
                ),
            )
        json_row, emit_row = self.rows[-2:]
        emit_row["vs_json"] = emit_row["rate"] / json_row["rate"]

    def case_shards(self) -> None:
        """Drain rate with 1, 2 and 4 shards, by 1 collector (SQLite, and PostgreSQL) and by
        2 (PostgreSQL only: one writer per SQLite file)."""
        n, url, batch = self.sizes.backlog, self.args.redis_url, self.args.batch_size
        for shards in (1, 2, 4):
            db = f"sqlite:///{self.tmp / f'shards-{shards}.db'}"
            self.add(
                "shards",
                f"S={shards} C=1 sqlite",
                lambda d=db, s=shards: sharded.drain(url, d, self.queue(), n, batch, s, 1),
            )
            if self.args.no_postgres:
                continue
            for collectors in (1, 2):
                with self.pg() as db:
                    self.add(
                        "shards",
                        f"S={shards} C={collectors} postgresql",
                        lambda d=db, s=shards, c=collectors: sharded.drain(
                            url, d, self.queue(), n, batch, s, c
                        ),
                    )

    def case_mariadb(self) -> None:
        mysql.case(self)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="rc-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        bench.run()
    checks = report.targets(bench.rows)
    command = "python -m scripts.bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"# {command}  ({started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load {load} at end)")
    print(report.table(bench.rows, args.markdown))
    print()
    print(report.targets_table(checks, args.markdown))
    payload = {
        "command": command,
        "started": started.isoformat(),
        "sizes": vars(bench.sizes),
        "environment": {**environment(), "load_at_end": os.getloadavg()},
        "results": bench.rows,
        "targets": checks,
    }
    stem = f"bench-{started:%Y%m%d-%H%M%S}"
    for path in report.save(Path(args.out), stem, payload):
        print(f"wrote {path}", file=sys.stderr)
    return 0
