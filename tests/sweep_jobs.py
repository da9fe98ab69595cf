"""Job functions the sweep tests run in RQ workers. They emit the records that
``@collect(table="ij", key="params")`` makes: inputs and outputs, keyed by the parameters."""

from __future__ import annotations

import workers
from workers.keys import point_key

TABLE = "ij"


def op(I: float, J: float, replicate: int = 0) -> None:  # noqa: E741 - the tutorial's names
    """K = I * J + replicate / 10, sent to the queue named by COLLECTOR_QUEUE."""
    inputs = {"I": I, "J": J, "replicate": replicate}
    emitter = workers.Emitter()
    try:
        emitter.emit(
            {**inputs, "K": I * J + replicate / 10}, table=TABLE, key=point_key(TABLE, inputs)
        )
    finally:
        emitter.close()
