"""Commands a shell loop calls often load only what they use: ``collector emit`` sends a record
without SQLAlchemy or the daemon, ``collector status`` without the daemon, the web server or
Dask; and ``emit`` with Redis away says at once on stderr that it is retrying. (The time of one
``collector emit`` against ``workers.emit`` is measured by scripts/emit_startup.py.)"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time

import pytest
import redis

from tests.helpers import REAL_REDIS_URL
from workers.entry import decode_records

# Runs the console script's group in-process, then names the modules of HEAVY it loaded.
RUN_AND_LIST = """
import sys
from collector.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    heavy = {heavy!r}
    loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
    print("LOADED:" + ",".join(loaded), file=sys.stderr)
"""
HEAVY = (
    "sqlalchemy", "collector.daemon", "collector.store", "collector.web", "collector.sweeps",
    "collector.output", "dask", "distributed", "starlette", "uvicorn", "pandas", "psycopg",
)  # fmt: skip


def loaded_by(*args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("LOADED:"))
    return done, [m for m in line.removeprefix("LOADED:").split(",") if m]


@pytest.mark.redis
def test_emit_sends_its_record_without_loading_sqlalchemy_or_the_daemon(
    real_redis: redis.Redis, queue: str
) -> None:
    args = ("--redis-url", REAL_REDIS_URL, "--queue", queue, "-t", "t", "x=1")
    done, loaded = loaded_by("emit", *args)
    assert done.returncode == 0, done.stderr
    [(_id, fields)] = real_redis.xrange(queue)
    [record] = decode_records(fields[b"m"])
    assert (record.table, record.data, record.id) == ("t", {"x": 1}, done.stdout.strip())
    assert loaded == []


@pytest.mark.redis
def test_status_loads_no_daemon_web_server_sweeps_or_dask(
    real_redis: redis.Redis, queue: str, sqlite_url: str
) -> None:
    args = ("--redis-url", REAL_REDIS_URL, "--queue", queue, "--db-url", sqlite_url, "--json")
    done, loaded = loaded_by("status", *args)
    assert done.returncode == 0, done.stderr
    assert '"queue": 0' in done.stdout
    # It counts rows: SQLAlchemy, and the database's dialect module that makes the engine
    # (collector.dialects), which holds that database's store rules (collector.store).
    needed = ("sqlalchemy", "collector.store")
    assert loaded == sorted(m for m in loaded if m.startswith(needed))
    assert "sqlalchemy" in loaded


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_stderr_line(proc: subprocess.Popen[str], timeout: float) -> tuple[str, float]:
    """The first line ``proc`` writes on stderr and how long it took (AssertionError if none)."""
    assert proc.stderr is not None
    start = time.monotonic()
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stderr, selectors.EVENT_READ)
        assert selector.select(timeout), f"nothing on stderr in {timeout} s"
    return proc.stderr.readline(), time.monotonic() - start


def test_emit_with_redis_away_says_at_once_that_it_is_retrying(tmp_path) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    env = {**os.environ, "COLLECTOR_EMIT_TIMEOUT": "120", "COLLECTOR_SPOOL_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "emit", "--redis-url", url, "-t", "t", "x=1"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line, seconds = first_stderr_line(proc, timeout=60)
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert line.startswith(f"redis at {url} does not take records (")
    assert line.rstrip().endswith("retrying for up to 120 s, then spooling")
    assert seconds < 60  # long before the 120 s of retries end (the start-up is all it waits)
