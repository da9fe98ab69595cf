"""The soak's collectors and producers as named, restartable processes. A process that ends
without a fault ending it is a finding (its exit code and the tail of its log), and is started
again so the run goes on."""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
import time
from pathlib import Path

from scripts.soak.child import options_line
from scripts.soak.procs import Child, Children
from scripts.soak.workload import Plan

STOP_SECONDS = 30.0  # SIGTERM to exit: a collector finishes its batch first
METRICS_AT = re.compile(r"metrics at http://[^:]+:(\d+)/metrics")


class Collectors:
    """``collector run`` processes (or the command given instead), one consumer name each, each
    incarnation serving metrics on a port of its choosing (read from its log: a port picked in
    advance may meanwhile be the local end of some client's connection), all with the same
    arguments except ``--shards``, and ``urls`` (``{"--redis-url": ..., "--db-url": ...}``) as
    the first line on its stdin (scripts/soak/child.py). Faults that end or start collectors
    hold ``changing``, so a shard-count change and a kill never interleave."""

    def __init__(self, children: Children, logs: Path, command: list[str], args: list[str],
                 names: list[str], shards: int | None, urls: dict[str, str]) -> None:  # fmt: skip
        self.children, self.logs, self.command, self.args = children, logs, command, args
        self.urls = options_line(urls)
        self.names = names
        self.shards = shards
        self.procs: dict[str, Child] = {}
        self.since: dict[str, int] = {}  # where each incarnation's output starts in its log
        self.down: set[str] = set()  # ended by a fault, not yet restarted
        self.findings: list[str] = []
        self.lock = threading.RLock()  # faults start and kill while ``check`` looks
        self.changing = threading.RLock()

    def start(self, name: str) -> None:
        argv = [*self.command, *self.args, "--consumer", name,
                "--metrics-port", "0", "--metrics-bind", "127.0.0.1"]  # fmt: skip
        if self.shards:
            argv += ["--shards", str(self.shards)]
        log = self.logs / f"collector-{name}.log"
        with self.lock:
            old = self.procs.get(name)
            if old is not None and old.alive():  # never two incarnations of one consumer
                old.kill()
            self.since[name] = log.stat().st_size if log.exists() else 0
            self.procs[name] = self.children.start(argv, log, stdin=self.urls)
            self.down.discard(name)

    def output(self, name: str) -> str:
        """What the current incarnation of ``name`` has logged."""
        with (self.logs / f"collector-{name}.log").open("rb") as handle:
            handle.seek(self.since[name])
            return handle.read().decode(errors="replace")

    def ports(self) -> dict[str, int]:
        """Each running collector's metrics port, from its log."""
        found = {}
        for name in self.names:
            match = METRICS_AT.findall(self.output(name))
            if match:
                found[name] = int(match[-1])
        return found

    def kill(self, name: str) -> None:
        with self.lock:
            self.down.add(name)
            self.procs[name].kill()

    def signal(self, name: str, sig: int) -> None:
        self.procs[name].signal(sig)

    def stop(self, name: str) -> None:
        """SIGTERM and wait: a clean stop, exit 0, else a finding."""
        self.down.add(name)
        child = self.procs[name]
        child.signal(signal.SIGCONT)
        child.signal(signal.SIGTERM)
        code = child.wait(STOP_SECONDS)
        if code is None:
            self.findings.append(f"collector {name} did not stop within {STOP_SECONDS:.0f} s "
                                 f"of SIGTERM: {child.log_tail()}")  # fmt: skip
            child.kill()
        elif code == -signal.SIGTERM and "collector started" not in self.output(name):
            pass  # still starting, before its signal handlers: it had read nothing
        elif code != 0:
            self.findings.append(f"collector {name} exited {code} on SIGTERM: {child.log_tail()}")

    def restart_all(self, shards: int) -> None:
        for name in self.names:
            self.stop(name)
        self.shards = shards
        for name in self.names:
            self.start(name)

    def check(self) -> None:
        with self.lock:
            for name, child in list(self.procs.items()):
                if name not in self.down and not child.alive():
                    self.findings.append(
                        f"collector {name} exited {child.proc.returncode} with no fault: "
                        f"{child.log_tail()}"
                    )
                    self.start(name)


class Producers:
    """Producer processes by slot; a replacement gets the next life number (its own receipts).
    Each reads the Redis URL on its stdin (``{"redis_url": ...}``), not from its environment."""

    def __init__(self, children: Children, directory: Path, plan: Plan, env: dict[str, str],
                 slots: list[str], redis_url: str, command: list[str] | None = None,
                 ) -> None:  # fmt: skip
        self.children, self.directory, self.plan, self.env = children, directory, plan, env
        self.slots = slots
        self.url = json.dumps({"redis_url": redis_url}) + "\n"
        self.command = command or [sys.executable, "-m", "scripts.soak.producer"]
        self.lives = dict.fromkeys(slots, 0)
        self.procs: dict[str, Child] = {}
        self.down: set[str] = set()
        self.findings: list[str] = []
        self.lock = threading.RLock()

    def start(self, slot: str) -> None:
        with self.lock:
            self._start(slot)

    def _start(self, slot: str) -> None:
        if time.time() > self.plan.until - 1:
            return  # too late for a replacement: the run is ending
        self.lives[slot] += 1
        life = self.lives[slot]
        receipts = self.directory / "receipts" / f"{slot}-{life}.jsonl"
        argv = [*self.command, str(receipts), slot, str(life), self.plan.dumps()]
        log = self.directory / "logs" / f"producer-{slot}-{life}.log"
        self.procs[slot] = self.children.start(argv, log, self.env, self.url)
        self.down.discard(slot)

    def kill(self, slot: str) -> None:
        with self.lock:
            self.down.add(slot)
            self.procs[slot].kill()

    def check(self) -> None:
        with self.lock:
            for slot, child in list(self.procs.items()):
                code = child.proc.poll()
                if slot in self.down or code is None:
                    continue
                if code != 0 or time.time() < self.plan.until - 0.5:
                    self.findings.append(f"producer {slot} exited {code} before the end: "
                                         f"{child.log_tail()}")  # fmt: skip
                self.down.add(slot)

    def wait_all(self, timeout: float) -> None:
        """Wait for every producer to end on its own (normally, code 0)."""
        deadline = time.monotonic() + timeout
        for slot, child in self.procs.items():
            if slot in self.down:
                continue
            code = child.wait(max(0.1, deadline - time.monotonic()))
            if code is None:
                self.findings.append(f"producer {slot} still running {timeout:.0f} s after the "
                                     f"end: {child.log_tail()}")  # fmt: skip
                child.kill()
            elif code != 0:
                self.findings.append(f"producer {slot} exited {code}: {child.log_tail()}")
            self.down.add(slot)
