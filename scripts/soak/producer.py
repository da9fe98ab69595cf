"""One producer process of the soak: until the plan's end it calls ``workers.emit``,
``workers.emit_many`` and a ``@collect`` job, each call written to its receipt file before and
after (receipts.py), then exits normally (which re-sends what it spooled, if Redis lets it).

    python -m scripts.soak.producer RECEIPTS SLOT LIFE PLAN_JSON   <<< '{"redis_url": ...}'

Queue and spool come from the environment (COLLECTOR_QUEUE, ...), as in a job; the Redis URL,
which may hold a password, from the first line on stdin, never from argv or the environment
the soak gives it (it becomes this process's own COLLECTOR_REDIS_URL, as a job's would be).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import workers
from scripts.soak.receipts import Writer
from scripts.soak.workload import POISON_RATE, Plan, data_for, poisoned
from workers.keys import point_key

_planned: dict[str, Any] = {}  # what the next ``job`` call does: return this, or raise


@workers.collect(table="jobs", key="params")
def job(x: int, y: float) -> dict[str, Any]:
    """A job that fails when planned to; its rerun (same x, y, same key) may succeed."""
    if _planned["fail"]:
        raise ValueError(f"planned failure [{_planned['tag']}]")
    return {"tag": _planned["tag"], "score": _planned["score"], "note": _planned["note"]}


class Producer:
    def __init__(self, receipts: Path, slot: str, life: int, plan: Plan) -> None:
        self.slot, self.life, self.plan = slot, life, plan
        self.rng = random.Random(f"{plan.seed}:{slot}:{life}")
        self.out = Writer(receipts, {"slot": slot, "life": life, "pid": os.getpid()})
        self.n = 0

    def tag(self, i: int = 0) -> str:
        return f"{self.slot}.{self.life}.{self.n}.{i}"

    def record(self, table: str, i: int, rid: str | None) -> dict[str, Any]:
        tag = self.tag(i)
        data = data_for(self.plan, self.rng, tag, time.time(), self.n * 1000 + i)
        poison = poisoned(self.plan, self.rng, data) if self.rng.random() < POISON_RATE else None
        return {"tag": tag, "id": rid, "table": table, "data": data, "poison": poison}

    def call(self) -> None:
        """One call of a kind drawn from the seed, with its two receipt lines."""
        self.n += 1
        kind = self.rng.choices(["emit", "keyed", "many", "collect"], [40, 20, 15, 25])[0]
        if kind == "collect":
            self.collect()
            return
        if kind == "many":
            recs = [self.record("many", i, None) for i in range(self.rng.randrange(1, 40))]
            self.send("many", recs, lambda: workers.emit_many([r["data"] for r in recs],
                                                              table="many"))  # fmt: skip
            return
        key = f"k{self.slot}-{self.rng.randrange(self.plan.keys)}" if kind == "keyed" else None
        rec = self.record("results", 0, key)
        self.send("emit", [rec], lambda: [workers.emit(rec["data"], key=key)])

    def send(self, call: str, recs: list[dict[str, Any]], func: Any) -> None:
        self.out.line({"n": self.n, "at": time.time(), "call": call, "recs": recs})
        try:
            ids = func()
        except Exception as exc:
            self.out.line({"n": self.n, "at": time.time(), "fail": f"{type(exc).__name__}: {exc}"})
            return
        self.out.line({"n": self.n, "at": time.time(), "ok": ids})

    def collect(self) -> None:
        """A ``@collect`` call on one of the slot's points, planned to fail a third of the time."""
        x = self.rng.randrange(self.plan.points)
        inputs: dict[str, Any] = {"x": int(self.slot.lstrip("p") or 0) * 100_000 + x, "y": x / 8}
        tag = self.tag()
        fail = self.rng.random() < 0.3
        _planned.update(fail=fail, tag=tag, score=self.rng.uniform(0, 1), note=f"run {self.n}")
        if fail:
            data = {**inputs, "_error": f"ValueError: planned failure [{tag}]"}
        else:
            data = {**inputs, "tag": tag, "score": _planned["score"], "note": _planned["note"]}
        rid = point_key("jobs", inputs)
        rec = {"tag": tag, "id": rid, "table": "jobs", "data": data, "poison": None}
        self.out.line({"n": self.n, "at": time.time(), "call": "collect", "recs": [rec]})
        try:
            job(**inputs)
        except ValueError as exc:
            if not fail or getattr(exc, "__notes__", None):
                self.out.line({"n": self.n, "at": time.time(), "fail": repr(exc)})
                return
        except Exception as exc:
            self.out.line({"n": self.n, "at": time.time(), "fail": repr(exc)})
            return
        self.out.line({"n": self.n, "at": time.time(), "ok": [rid]})

    def run(self) -> None:
        while time.time() < self.plan.until:
            self.call()
            time.sleep(self.rng.uniform(0.02, 0.08))
        workers.api.reset()  # close the default emitter: re-sends its spool if Redis takes it
        self.out.close()


def main(argv: list[str]) -> None:
    receipts, slot, life, plan = argv
    os.environ["COLLECTOR_REDIS_URL"] = json.loads(sys.stdin.readline())["redis_url"]
    Producer(Path(receipts), slot, int(life), Plan.loads(plan)).run()


if __name__ == "__main__":
    main(sys.argv[1:])
