"""The demo's job, the tutorial's example: inputs I and J, output K, one row per call in ``demo``.

Kept apart from ``collector.demo.run`` so that an ``rq worker`` imports only this and ``workers``.
"""

from __future__ import annotations

import math

from workers import collect

TABLE = "demo"


@collect(table=TABLE)
def op(I: float, J: float, steps: int = 400) -> dict[str, float]:  # noqa: E741 - tutorial names
    """K = the integral of sin(2 pi I x) cos(2 pi J x) over [0, 1], by the midpoint rule.

    A little real work per point, as a simulation would do; ``steps`` < 1 is a ValueError.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    h = 1.0 / steps
    total = sum(
        math.sin(2 * math.pi * I * x) * math.cos(2 * math.pi * J * x)
        for x in ((k + 0.5) * h for k in range(steps))
    )
    return {"K": total * h}
