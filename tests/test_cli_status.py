"""``collector status`` shows a batch that keeps failing and why, and what a Redis restart
would do to queued records."""

from __future__ import annotations

import json
import time

import pytest

from collector.stream import Stream
from tests.helpers import collector

pytestmark = pytest.mark.redis


def test_status_shows_a_failing_batch_and_the_persistence(real_redis, queue, sqlite_url) -> None:
    url = "redis://127.0.0.1:6379/0"
    stream = Stream(real_redis, queue, "node7")
    stream.ensure_group()
    failure = {"since": time.time() - 42, "attempts": 9, "error": "database unavailable: locked"}
    stream.report(failure)
    args = ("status", "--redis-url", url, "--queue", queue, "--db-url", sqlite_url)
    shown = collector(*args)
    assert shown.returncode == 0, shown.stderr
    (line,) = [x for x in shown.stdout.splitlines() if x.startswith("  consumer node7: batch")]
    seconds = float(line.split(" for ")[1].split(" s ")[0])
    assert 42 <= seconds <= 60
    assert line.endswith(" s (9 attempts): database unavailable: locked")
    found = json.loads(collector(*args, "--json").stdout)
    assert found["failing"] == {"node7": failure}
    aof = real_redis.config_get("appendonly")["appendonly"] == "yes"
    rdb = bool(real_redis.config_get("save")["save"].strip())
    assert found["persistence"] == {"aof": aof, "rdb": rdb, "survives_restart": aof or rdb}
    line = next(x for x in shown.stdout.splitlines() if x.startswith("redis "))
    if not (aof or rdb):
        assert line.endswith(
            "WARNING: no persistence (AOF and RDB off): a restart loses queued records"
        )
