"""Job functions the sweep tests run in RQ workers. They emit the records that
``@collect(table="ij", key="params")`` makes: inputs and outputs, keyed by the parameters."""

from __future__ import annotations

import os

import redis

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


def held(I: float, J: float) -> None:  # noqa: E741
    """``op`` once the test lets it go: it first waits (up to 120 s) for one token on the list
    ``<COLLECTOR_QUEUE>:release``, so the job stays started for as long as the test wants."""
    client = redis.Redis.from_url(os.environ["COLLECTOR_REDIS_URL"])
    try:
        client.blpop([f"{os.environ['COLLECTOR_QUEUE']}:release"], timeout=120)
    finally:
        client.close()
    op(I, J)
