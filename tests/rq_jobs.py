"""Job functions that tests/test_rq.py runs in real ``rq worker`` processes (``--path tests``).

Only ``workers`` is imported here: a forking worker imports this module in every job's process.
"""

from __future__ import annotations

from workers import collect

TABLE = "rq_points"


@collect(table=TABLE)
def point(I: float, J: int) -> dict[str, float]:  # noqa: E741 - the tutorial's names
    """K = I * J."""
    return {"K": I * J}


@collect(table=TABLE)
def broken(I: float, J: int) -> dict[str, float]:  # noqa: E741
    """Always fails, as a job with bad input does."""
    raise ValueError("bad input")
