"""One soak run: the servers, the collectors and producers, the faults, the end, the checker,
the summary line. Every process it starts ends, and the PostgreSQL database it made is dropped,
whatever happens (the finally of ``soak``)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from scripts.soak import final
from scripts.soak.broker import Broker
from scripts.soak.canary import Canary
from scripts.soak.check import Checker, Result
from scripts.soak.databases import Database, open_database
from scripts.soak.faults import Executor, Fault, draw, kinds_for
from scripts.soak.fleet import Collectors, Producers
from scripts.soak.procs import Children, wait_until
from scripts.soak.progress import Progress
from scripts.soak.receipts import Writer, read_all
from scripts.soak.report import print_report
from scripts.soak.workload import TABLES, Plan, setup_data
from workers import Emitter

QUEUE = "soak:results"
MAX_RECORD_BYTES = 65536
PROGRESS_EVERY = 5.0
BOUND_SECONDS = 900  # after the run's minutes: setup, the end and the checker, at most
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Options:
    seed: int
    minutes: float
    db: str
    shards: int | None = None
    producers: int | None = None
    collector_command: list[str] | None = None
    keep: bool = False


class Soak:
    """The run's world (what faults act on) and its course."""

    def __init__(self, opts: Options, work: Path, db: Database, children: Children) -> None:
        self.opts, self.work, self.db, self.children = opts, work, db, children
        self.seconds = opts.minutes * 60
        self.broker = Broker(work / "redis", children)
        self.claim_idle = 2.0 if db.collectors > 1 else 60.0
        command = opts.collector_command or [sys.executable, "-m", "scripts.soak.child", "run"]
        urls = {"--redis-url": self.broker.url, "--db-url": db.url}  # on stdin: never in argv
        args = ["--queue", QUEUE, "--batch-size", "300", "--max-wait", "0.2",
                "--claim-idle", str(self.claim_idle), "--max-deliveries", "1000",
                "--max-record-bytes", str(MAX_RECORD_BYTES)]  # fmt: skip
        names = [f"c{i + 1}" for i in range(db.collectors)]
        self.fleet = Collectors(children, work / "logs", command, args, names, opts.shards, urls)
        self.collectors = names
        count = opts.producers or random.Random(f"producers:{opts.seed}").randint(4, 8)
        self.producers = [f"p{i}" for i in range(count)]
        self.outages: list[tuple[float, float]] = []
        self.down_since = 0.0
        self.killed_at = 0.0
        self.canary = Canary(self.broker.url)
        self.progress = Progress(work / "receipts", self.broker, db)

    # The World the faults act on

    def collector_kill(self, name: str) -> None:
        with self.fleet.changing:
            self.fleet.kill(name)

    def collector_start(self, name: str) -> None:
        with self.fleet.changing:
            self.fleet.start(name)

    def collector_signal(self, name: str, sig: int) -> None:
        with self.fleet.changing:
            self.fleet.signal(name, sig)

    def producer_kill(self, slot: str) -> None:
        self.pool.kill(slot)

    def producer_start(self, slot: str) -> None:
        self.pool.start(slot)

    def redis_stop(self, sig: int) -> None:
        self.down_since = time.time()
        self.broker.stop(sig)
        self.killed_at = time.time()

    def redis_start(self) -> str:
        self.canary.pause()
        self.broker.start()
        self.outages.append((self.down_since, time.time()))
        return self.canary.after_restart(self.killed_at)

    def redis_fill(self) -> None:
        self.down_since = time.time()
        self.broker.fill()

    def redis_unfill(self) -> None:
        self.broker.unfill()
        self.outages.append((self.down_since, time.time()))

    def db_lock(self, seconds: float, stop: threading.Event) -> str:
        return self.db.hold_lock(seconds, list(TABLES), stop) + f" for {seconds:.1f} s"

    def db_cut(self) -> str:
        return f"{self.db.kill_connections()} connections ended"

    def shards_raise(self) -> str:
        with self.fleet.changing:  # the count read under the lock: two changes raise it twice
            before = self.fleet.shards or 1
            self.fleet.restart_all(before + 1)
        return f"shards {before} -> {before + 1}"

    # The course of the run

    def say(self, text: str) -> None:
        print(text, flush=True)

    def setup(self) -> None:
        """Redis, the first collectors, and one record per table (every base column typed)."""
        self.broker.start()
        self.db.create()
        for name in self.collectors:
            self.fleet.start(name)
        (self.work / "receipts").mkdir()
        out = Writer(self.work / "receipts" / "setup-0.jsonl",
                     {"slot": "setup", "life": 0, "pid": os.getpid()})  # fmt: skip
        emitter = Emitter(self.broker.url, QUEUE)
        for n, table in enumerate(TABLES, start=1):
            data = setup_data(table)
            rec = {"tag": data["tag"], "id": data["tag"], "table": table, "data": data,
                   "poison": None}  # fmt: skip
            out.line({"n": n, "at": time.time(), "call": "emit", "recs": [rec]})
            emitter.emit(data, table=table, key=data["tag"])
            out.line({"n": n, "at": time.time(), "ok": [data["tag"]]})
        emitter.close()
        out.close()
        if not wait_until(lambda: all(self.db.read(t)[1] for t in TABLES), 90, every=0.3):
            raise RuntimeError(f"the first records were not stored within 90 s: "
                               f"{self.fleet.procs['c1'].log_tail()}")  # fmt: skip

    def run(self) -> Result:
        self.setup()
        t0 = time.time()
        plan = Plan.draw(self.opts.seed, t0, self.seconds, MAX_RECORD_BYTES)
        env = {**os.environ, "COLLECTOR_QUEUE": QUEUE, "COLLECTOR_SPOOL_DIR":
               str(self.work / "spool"), "COLLECTOR_EMIT_TIMEOUT": "1",
               "PYTHONPATH": str(REPO)}  # fmt: skip
        for name in ("COLLECTOR_SHARDS", "COLLECTOR_REDIS_URL", "COLLECTOR_DB_URL"):
            env.pop(name, None)
        self.pool = Producers(self.children, self.work, plan, env, self.producers, self.broker.url)
        kinds = kinds_for(self.db.collectors > 1, bool(self.opts.shards))
        faults = draw(self.opts.seed, self.seconds, self, kinds, self.claim_idle)
        self.print_schedule(faults, kinds)
        executor = Executor(self, faults, self.say)
        for slot in self.producers:
            self.pool.start(slot)
        self.canary.start()
        executor.start(t0)
        self.watch(t0, executor)
        executor.finish(60)
        return self.end(executor, kinds)

    def print_schedule(self, faults: list[Fault], kinds: list[str]) -> None:
        by_kind = Counter(f.kind for f in faults)
        planned = ", ".join(f"{k} {by_kind[k]}" for k in kinds)
        self.say(f"soak seed {self.opts.seed}: {self.db.name}, {len(self.collectors)} "
                 f"collector(s), {len(self.producers)} producers, {self.seconds:.0f} s, "
                 f"{len(faults)} faults: {planned}")  # fmt: skip
        missing = [k for k in kinds if not by_kind[k]]
        if missing:
            raise SystemExit(f"soak: too short for every fault kind (missing {missing})")
        for fault in faults:
            self.say(f"  planned {fault}")

    def watch(self, t0: float, executor: Executor) -> None:
        """Until the end of the run: a progress line every few seconds; processes that died
        without a fault noticed."""
        shown = t0
        while time.time() < t0 + self.seconds:
            time.sleep(0.5)
            self.fleet.check()
            self.pool.check()
            if time.time() - shown >= PROGRESS_EVERY:
                shown = time.time()
                active = ", ".join(sorted(executor.active)) or "-"
                fired = sum(executor.fired.values())
                self.say(f"[{shown - t0:6.1f}s] {self.progress.line()} | faults {fired} fired, "
                         f"active: {active}")  # fmt: skip

    def end(self, executor: Executor, kinds: list[str]) -> Result:
        """Heal what is left, let producers finish, drain, compare, check."""
        if not self.broker.up():
            self.redis_start()
        self.broker.unfill()
        for name in self.collectors:
            if name in self.fleet.down or not self.fleet.procs[name].alive():
                self.fleet.start(name)
            self.fleet.signal(name, signal.SIGCONT)
        self.pool.wait_all(90)
        findings = [*executor.errors]
        findings += final.flush_spools(self.work / "spool", self.broker.url)
        client = self.broker.client(5)
        findings += final.wait_drained(client, 180)
        ports = self.fleet.ports()
        if len(ports) != len(self.collectors):
            findings.append(f"metrics port not in the logs of {set(self.collectors) - set(ports)}")
        if not findings:
            findings += final.probe(self.broker.url, QUEUE, self.db, ports, 60)
            findings += final.agree(self.broker.url, QUEUE, self.db, ports, self.fleet.shards)
        dead = final.dead_letters(client)
        client.close()
        self.canary.stop()
        for name in self.collectors:
            self.fleet.stop(name)
        findings += self.fleet.findings + self.pool.findings
        tables = {t: self.db.read(t) for t in TABLES}
        result = Checker(read_all(self.work / "receipts"), self.canary.windows,
                         self.outages, self.db.refusal).run(tables, dead)  # fmt: skip
        for text in findings:
            result.add("run", text)
        for kind in kinds:
            if not executor.fired[kind]:
                result.add("fault never fired", kind)
        result.counts.update({f"fault {k}": n for k, n in executor.fired.items()})
        return result


def soak(opts: Options) -> int:
    """Run one soak and print its report; the exit code (0: no finding)."""
    work = Path(tempfile.mkdtemp(prefix=f"soak-{opts.seed}-"))
    (work / "logs").mkdir()
    children = Children()
    db = open_database(opts.db, work, f"{opts.seed}_{os.getpid()}")
    previous = signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGALRM, _overdue)
    signal.alarm(int(opts.minutes * 60 + BOUND_SECONDS))
    failed = True
    try:
        world = Soak(opts, work, db, children)
        result = world.run()
        failed = print_report(opts.seed, result, world.canary.windows, work)
        return 1 if failed else 0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, previous)
        children.end_all()
        if not (failed and db.name == "sqlite"):  # a failed run's SQLite file stays with its logs
            with contextlib.suppress(Exception):
                db.drop()
        if failed or opts.keep:
            print(f"soak: logs and receipts kept in {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _interrupted(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _overdue(_signum: int, _frame: object) -> None:
    raise SystemExit(f"soak: not done {BOUND_SECONDS} s after the run's end; stopped")
