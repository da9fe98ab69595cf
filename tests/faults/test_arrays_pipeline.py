"""``collector run --pipeline --arrays``: an arrays file deleted under the writer process stops
the collector in lines a person reads, never a traceback, with the records left pending."""

from __future__ import annotations

import numpy as np
import pytest
import redis

from faults.servers import start_collector, wait_until
from workers import Emitter

pytestmark = pytest.mark.slow


def test_a_deleted_arrays_file_stops_a_pipelined_collector_in_one_line(
    real_redis, queue, sqlite_url, tmp_path, monkeypatch
) -> None:
    from tests.helpers import REAL_REDIS_URL

    monkeypatch.setenv("COLLECTOR_PIPELINE", "1")
    path = tmp_path / "a.h5"
    daemon = start_collector(REAL_REDIS_URL, sqlite_url, queue, "c1", "--arrays", str(path))
    emitter = Emitter(REAL_REDIS_URL, queue)
    emitter.emit({"K": np.ones(3)}, table="arr", key="a")
    client = redis.Redis.from_url(REAL_REDIS_URL)
    wait_until(lambda: client.xlen(queue) == 0, 60, "the first record stored")
    path.unlink()
    emitter.emit({"K": np.ones(3)}, table="arr", key="b")
    emitter.close()
    assert daemon.stop(None, timeout=60) != 0
    assert "Traceback" not in daemon.err, daemon.err
    assert f"--arrays {path} was deleted or replaced" in daemon.err
    assert client.xpending(queue, "collector")["pending"] == 1
    client.close()
