"""What the producers send, drawn from the seed: records for three tables through ``emit``,
``emit_many`` and ``@collect``, keys reused a few times, new columns appearing and an int column
widening to float as the run goes on, and about 1% poison the collector must refuse.

Tables (made by the soak's first records, so every base column exists before any poison):
``results`` (``emit``, some under reused keys ``k<slot>-<n>``), ``many`` (``emit_many``) and
``jobs`` (``@collect(key="params")``: inputs ``x``, ``y``; a failure stores them with ``_error``,
a rerun of the point may succeed and replace it).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any

TABLES = ("results", "many", "jobs")
NEW_KINDS = ("int", "str", "json", "float", "bool")
POISON_RATE = 0.01


@dataclass
class Plan:
    """The run's shape, the same for every producer: when ``w`` widens, when each new column
    starts, how many keys and points a slot reuses, the collector's record size limit."""

    seed: int
    t0: float
    until: float
    widen_at: float
    columns: dict[str, list[Any]] = field(default_factory=dict)  # name -> [kind, starts at]
    keys: int = 150
    points: int = 60
    max_record_bytes: int = 65536

    @classmethod
    def draw(cls, seed: int, t0: float, seconds: float, max_record_bytes: int) -> Plan:
        rng = random.Random(f"plan:{seed}")
        widen_at = t0 + seconds * rng.uniform(0.3, 0.5)
        columns = {"c1": ["json", widen_at]}  # a new column in the very batch that widens w
        for n, kind in enumerate(rng.sample(NEW_KINDS, 4), start=2):
            columns[f"c{n}"] = [kind, t0 + seconds * rng.uniform(0.1, 0.85)]
        scale = max(1.0, seconds / 60)
        return cls(seed, t0, t0 + seconds, widen_at, columns, int(150 * scale), int(60 * scale),
                   max_record_bytes)  # fmt: skip

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> Plan:
        return cls(**json.loads(text))


def value_of(kind: str, rng: random.Random, n: int) -> Any:
    """A value of ``kind`` (the kinds the contract names; no NaN, which equals nothing)."""
    if kind == "int":
        return rng.randrange(-(2**40), 2**40)
    if kind == "float":  # -0.0 rarely: SQLite and MariaDB refuse it, poison like the rest
        zero = -0.0 if rng.random() < 0.04 else 0.0
        return rng.choice([rng.uniform(-1e6, 1e6), n + 0.5, 1e-300, zero])
    if kind == "str":
        return rng.choice(["", "é ü 漢字", "a" * rng.randrange(1, 200), f"s{n}", "null"])
    if kind == "bool":
        return rng.random() < 0.5
    return rng.choice([[n, "x", 1.5, None], {"a": n, "b": [True, False]}, [], {}])


def data_for(plan: Plan, rng: random.Random, tag: str, now: float, n: int) -> dict[str, Any]:
    """One ``results``/``many`` record's data at time ``now``: base columns, some left out."""
    data: dict[str, Any] = {"tag": tag, "i": n, "f": value_of("float", rng, n)}
    if rng.random() < 0.7:
        data["s"] = value_of("str", rng, n)
    if rng.random() < 0.5:
        data["js"] = value_of("json", rng, n)  # absent: SQL NULL, not JSON null
    if rng.random() < 0.3:
        data["b"] = rng.random() < 0.5
    if rng.random() < 0.2:
        data["blob"] = rng.randbytes(rng.randrange(0, 64))
    # Every draw is made whatever the time, so that a seed gives each producer the same sequence
    # of random numbers however fast the run goes; the time only decides what they are used for.
    widened, as_int = rng.random() < 0.5, rng.randrange(-(2**31), 2**31)
    data["w"] = n + 0.25 if widened and now >= plan.widen_at else as_int
    for name, (kind, starts) in plan.columns.items():
        present, value = rng.random() < 0.7, value_of(kind, rng, n)
        if present and now >= starts:
            data[name] = value
    return data


def poisoned(plan: Plan, rng: random.Random, data: dict[str, Any]) -> str:
    """Make ``data`` a record the collector must dead-letter; returns why."""
    draw = rng.random()
    if draw < 0.45:
        data["i"] = f"not an int {data['i']}"  # ``i`` has been a BigInteger since the start
        return "type conflict"
    if draw < 0.9:
        data["s"] = "x" * (plan.max_record_bytes + 1000)
        return "over the size limit"
    data["f"] = rng.choice([2**53 + 1, 2**63 - 1, -(2**53) - 3])  # ``f``: a Float column
    return "an int no float holds exactly, into a float column"


def setup_data(table: str) -> dict[str, Any]:
    """The first record of ``table``: every base column, so each has its type from the start."""
    if table == "jobs":
        return {"x": 0, "y": 0.0, "tag": "setup-jobs", "score": 0.0, "note": "setup"}
    return {"tag": f"setup-{table}", "i": 0, "f": 0.5, "s": "setup", "js": [0], "b": True,
            "blob": b"\x00", "w": 0}  # fmt: skip
