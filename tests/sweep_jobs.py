"""Job functions the sweep tests run in RQ workers. They emit the records that
``@collect(table="ij", key="params")`` makes: inputs and outputs, keyed by the parameters."""

from __future__ import annotations

import os
import time

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


def wait_for_release(most: float = 120) -> None:
    """Wait (``most`` seconds at most) for one token on the list ``<COLLECTOR_QUEUE>:release``:
    the test decides when a job goes on. Short BLPOPs, as a client may time a long one out."""
    client = redis.Redis.from_url(os.environ["COLLECTOR_REDIS_URL"])
    deadline = time.monotonic() + most
    try:
        release = f"{os.environ['COLLECTOR_QUEUE']}:release"
        while client.blpop([release], timeout=1) is None and time.monotonic() < deadline:
            pass
    finally:
        client.close()


def held(I: float, J: float) -> None:  # noqa: E741
    """``op`` once the test lets it go (``wait_for_release``): the job stays started for as
    long as the test wants."""
    wait_for_release()
    op(I, J)
