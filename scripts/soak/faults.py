"""The fault schedule, drawn from the seed before the run starts (the same seed, the same
schedule), and its execution: each fault in its own thread at its time, overlapping others,
healed after its duration or at once when the soak ends early. Every start and heal goes to the
timed history.

Kinds, each with what it hits: a collector killed (SIGKILL, restarted) or paused (SIGSTOP for
longer than --claim-idle when there are two, then SIGCONT); a producer killed and replaced;
Redis stopped (SIGTERM) or killed (SIGKILL) and restarted on its AOF, or full (maxmemory) for a
while; the database locked, or (server databases) its collectors' connections cut; with
--shards, the shard count raised (every collector restarted with the new count).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

HEAL_MARGIN = 6.0  # s before the end of the run by which every fault is healed
REDIS_COOLDOWN = 2.5  # s between Redis faults: spools re-sent before the next outage


class World(Protocol):
    """What the faults act on (the soak's processes and servers)."""

    collectors: list[str]
    producers: list[str]

    def collector_kill(self, name: str) -> None: ...
    def collector_start(self, name: str) -> None: ...
    def collector_signal(self, name: str, sig: int) -> None: ...
    def producer_kill(self, slot: str) -> None: ...
    def producer_start(self, slot: str) -> None: ...
    def redis_stop(self, sig: int) -> None: ...
    def redis_start(self) -> str: ...
    def redis_fill(self) -> None: ...
    def redis_unfill(self) -> None: ...
    def db_lock(self, seconds: float, stop: threading.Event) -> str: ...
    def db_cut(self) -> str: ...
    def shards_raise(self) -> str: ...


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the start
    kind: str
    target: str
    seconds: float

    def __str__(self) -> str:
        return f"t={self.at:6.1f}s  {self.kind:<15} {self.target:<4} for {self.seconds:.1f} s"


def kinds_for(server_db: bool, shards: bool) -> list[str]:
    kinds = ["collector_kill", "collector_stop", "producer_kill", "redis_term", "redis_kill",
             "redis_full", "db_lock"]  # fmt: skip
    if server_db:
        kinds.append("db_cut")
    if shards:
        kinds.append("shard_change")
    return kinds


def _resource(kind: str, target: str) -> str:
    if kind.startswith("redis"):
        return "redis"
    if kind.startswith("db"):
        return "db"
    return target


def _duration(kind: str, rng: random.Random, claim_idle: float, two: bool) -> float:
    if kind == "collector_stop":
        return claim_idle + rng.uniform(1.0, 3.0) if two else rng.uniform(1.0, 4.0)
    if kind in ("redis_full", "db_lock"):
        return rng.uniform(2.0, 5.0)
    if kind in ("db_cut", "shard_change"):
        return 0.0
    return rng.uniform(0.3, 2.5)


def draw(
    seed: int, seconds: float, world: World, kinds: list[str], claim_idle: float
) -> list[Fault]:
    """The run's faults: one every 0.8-3 s, overlapping, never two on one target at once, every
    kind at least once (the first rounds go through all kinds in a seeded order)."""
    rng = random.Random(f"faults:{seed}")
    two = len(world.collectors) > 1
    busy: dict[str, float] = {}
    order = rng.sample(kinds, len(kinds))  # kinds not yet placed come first, in this order
    faults: list[Fault] = []
    t = 3.0
    while t <= seconds - HEAL_MARGIN:
        t += rng.uniform(0.8, 3.0)
        for kind in [*order, *rng.sample(kinds, len(kinds))]:
            fault = _place(kind, t, rng, world, busy, claim_idle, two)
            if fault is not None and fault.at + fault.seconds <= seconds - HEAL_MARGIN:
                faults.append(fault)
                res = _resource(fault.kind, fault.target)
                busy[res] = fault.at + fault.seconds + (REDIS_COOLDOWN if res == "redis" else 0.3)
                if kind in order:
                    order.remove(kind)
                break
    return faults


def _place(kind: str, t: float, rng: random.Random, world: World, busy: dict[str, float],
           claim_idle: float, two: bool) -> Fault | None:  # fmt: skip
    if kind == "producer_kill":
        targets = world.producers
    elif kind.startswith("collector"):
        targets = world.collectors
    elif kind == "shard_change":
        targets = ["all"]
    else:
        targets = ["-"]
    free = [x for x in targets if busy.get(_resource(kind, x), 0) <= t]
    if kind == "shard_change" or kind.startswith("collector"):  # not while collectors change
        free = [x for x in free if busy.get("all", 0) <= t]
        if kind == "shard_change" and any(busy.get(c, 0) > t for c in world.collectors):
            free = []
    if not free:
        return None
    seconds = round(_duration(kind, rng, claim_idle, two), 1)
    return Fault(round(t, 1), kind, rng.choice(free), seconds)


class Executor:
    """Runs a schedule against a World; ``history`` holds what happened, with times."""

    def __init__(self, world: World, faults: list[Fault], say: Callable[[str], None]) -> None:
        self.world, self.faults, self.say = world, faults, say
        self.stop = threading.Event()
        self.fired: Counter[str] = Counter()
        self.errors: list[str] = []
        self.active: set[str] = set()
        self.threads: list[threading.Thread] = []
        self.t0 = 0.0

    def start(self, t0: float) -> None:
        self.t0 = t0
        for fault in self.faults:
            thread = threading.Thread(target=self._one, args=(fault,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def log(self, text: str) -> None:
        self.say(f"[{time.time() - self.t0:6.1f}s] {text}")

    def _one(self, fault: Fault) -> None:
        if self.stop.wait(max(0.0, self.t0 + fault.at - time.time())):
            return
        label = f"{fault.kind} {fault.target}"
        self.active.add(label)
        self.log(f"start  {label}" + (f" for {fault.seconds:.1f} s" if fault.seconds else ""))
        try:
            detail = self._apply(fault)
            self.fired[fault.kind] += 1
            self.log(f"done   {label}{': ' + detail if detail else ''}")
        except Exception as exc:  # a fault that could not be applied is reported, not fatal
            self.errors.append(f"{label}: {exc!r}")
            self.log(f"FAILED {label}: {exc!r}")
        finally:
            self.active.discard(label)

    def _apply(self, fault: Fault) -> str:
        """Inflict ``fault``, wait its duration (less if the soak stops), heal it."""
        import signal

        w, target, hold = self.world, fault.target, fault.seconds
        if fault.kind == "db_lock":
            return w.db_lock(hold, self.stop)
        if fault.kind == "db_cut":
            return w.db_cut()
        if fault.kind == "shard_change":
            return w.shards_raise()
        heal: Callable[[], object]
        if fault.kind == "collector_kill":
            w.collector_kill(target)
            heal = lambda: w.collector_start(target)  # noqa: E731
        elif fault.kind == "collector_stop":
            w.collector_signal(target, signal.SIGSTOP)
            heal = lambda: w.collector_signal(target, signal.SIGCONT)  # noqa: E731
        elif fault.kind == "producer_kill":
            w.producer_kill(target)
            heal = lambda: w.producer_start(target)  # noqa: E731
        elif fault.kind in ("redis_term", "redis_kill"):
            w.redis_stop(signal.SIGTERM if fault.kind == "redis_term" else signal.SIGKILL)
            heal = w.redis_start
        else:
            w.redis_fill()
            heal = w.redis_unfill
        self.stop.wait(hold)
        result = heal()
        return f"healed after {hold:.1f} s" + (f" ({result})" if result else "")

    def finish(self, timeout: float) -> None:
        """Stop early faults from starting, heal running ones, wait for all threads."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
