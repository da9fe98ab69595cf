"""``collector status`` shows a batch that keeps failing and why, and what a Redis restart
would do to queued records."""

from __future__ import annotations

import json
import time

import pytest
from faults.servers import free_port

from collector.errors import RET_DATABASE
from collector.stream import Stream
from tests.helpers import REAL_REDIS_URL, collector

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


def test_status_with_the_database_down_still_shows_the_failing_batch(real_redis, queue) -> None:
    stream = Stream(real_redis, queue, "node7")
    stream.ensure_group()
    failure = {"since": time.time(), "attempts": 3, "error": "database unavailable: (2003, ...)"}
    stream.report(failure)
    down = f"mysql+pymysql://root@127.0.0.1:{free_port()}/db"  # nothing listens there
    args = ("status", "--redis-url", REAL_REDIS_URL, "--queue", queue, "--db-url", down)
    for extra in ((), ("--json",)):
        shown = collector(*args, *extra)
        assert shown.returncode == RET_DATABASE
        (error,) = shown.stderr.splitlines()
        assert error.startswith("Error: database unavailable: (2003, \"Can't connect to ")
        if extra:
            found = json.loads(shown.stdout)
            assert (found["failing"], found["tables"]) == ({"node7": failure}, {})
            assert found["database_error"] == error.removeprefix("Error: ")
        else:
            (line,) = [x for x in shown.stdout.splitlines() if x.startswith("  consumer node7: b")]
            assert line.endswith(" s (3 attempts): database unavailable: (2003, ...)")
