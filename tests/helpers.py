"""What tests share, in one module imported one way (``from tests.helpers import ...``): the real
servers' URLs, a collector driven in-process, rows read back, the console script and the
collector and producers as real processes."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from collector.daemon import Collector, Counters
from collector.db import make_engine
from collector.settings import Settings

REAL_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REAL_PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REAL_MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
URL_PARAMS = [  # for tests parametrised over the URL fixtures' names (conftest.py)
    "sqlite_url",
    pytest.param("pg_url", marks=pytest.mark.postgres),
    pytest.param("mysql_url", marks=pytest.mark.mysql),
]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
COLLECTOR = str(Path(sys.executable).with_name("collector"))


# --- a collector in this process -------------------------------------------------------------


def drain(collector: Collector, rounds: int = 100) -> int:
    """Call ``run_once`` until it finds nothing; returns the number of entries taken."""
    total = 0
    for _ in range(rounds):
        taken = collector.run_once()
        if not taken:
            return total
        total += taken
    raise AssertionError(f"queue not drained after {rounds} rounds")


def run_collector(settings: Settings, declared: sa.MetaData | None = None) -> Counters:
    """A collector from ``settings`` (``declared`` tables created first, as ``collector run
    --models`` does) started, drained and closed; returns what it did."""
    engine = make_engine(settings.db_url)
    if declared is not None:
        declared.create_all(engine)
    daemon = Collector(settings, engine=engine, declared=declared)
    daemon.start()
    try:
        drain(daemon)
    finally:
        daemon.close()
    return daemon.counters


def on_real_redis(settings: Settings) -> Settings:
    """The test's settings pointed at the machine's Redis (for work shared with subprocesses)."""
    return dataclasses.replace(settings, redis_url=REAL_REDIS_URL)


# --- what was stored ---------------------------------------------------------------------------


def rows(db_url: str, table: str, order: str = "_id") -> list[dict]:
    """Every row of ``table`` as a dict, ordered by the column ``order``, each value as the
    driver returns it (SQLite: JSON and datetimes as the stored text)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            q = conn.dialect.identifier_preparer.quote
            sql = f"SELECT * FROM {q(table)} ORDER BY {q(order)}"  # noqa: S608 - test names
            return [dict(r._mapping) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def typed_rows(db_url: str, table: str, order: str = "_id") -> list[dict]:
    """Every row of ``table`` as a dict, ordered by the column ``order``, each value through
    its reflected column type (JSON parsed, datetimes as datetime): what a reader gets."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            tbl = sa.Table(table, sa.MetaData(), autoload_with=conn)
            query = sa.select(tbl).order_by(tbl.c[order])
            return [dict(row) for row in conn.execute(query).mappings()]
    finally:
        engine.dispose()


def dead_reasons(client: redis.Redis, queue: str) -> list[str]:
    """Reasons of the dead letters on ``queue``, oldest first."""
    return [f[b"reason"].decode() for _, f in client.xrange(f"{queue}:dead")]


# --- real processes ----------------------------------------------------------------------------


def collector(*args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m collector ARGS`` (the console script's code) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


PRODUCER = """
import sys, workers
name, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    workers.emit({"producer": name, "i": i, "K": i * 0.5}, table="data", key=f"{name}-{i}")
"""


def start_producers(n: int, count: int, redis_url: str, queue: str) -> list[subprocess.Popen]:
    """``n`` processes, each emitting ``count`` records with keys ``p<k>-<i>``."""
    env = {**os.environ, "COLLECTOR_REDIS_URL": redis_url, "COLLECTOR_QUEUE": queue}
    return [
        subprocess.Popen([sys.executable, "-c", PRODUCER, f"p{k}", str(count)], env=env)
        for k in range(n)
    ]


def expected_keys(n: int, count: int) -> set[str]:
    """The keys ``start_producers(n, count, ...)`` emits."""
    return {f"p{k}-{i}" for k in range(n) for i in range(count)}


def start_collector(redis_url: str, db_url: str, queue: str, *extra: str) -> subprocess.Popen:
    """``collector run`` as its own process; its log goes to ``proc.log_path``."""
    args = [COLLECTOR, "run", "--redis-url", redis_url, "--db-url", db_url, "--queue", queue]
    args += ["--max-wait", "0.1", "--consumer", "it", *extra]
    log_path = Path(f"collector-{time.monotonic_ns()}.log").absolute()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(args, stderr=log)
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


def wait_ready(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until the collector has logged its start line (signal handlers are in place)."""
    wait_until(lambda: "collector started" in proc.log_path.read_text(), timeout)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    """Send ``sig`` and wait for the exit code."""
    proc.send_signal(sig)
    return proc.wait(timeout)


def wait_until(
    predicate: Callable[[], bool], timeout: float = 60, interval: float = 0.1, what: str = ""
) -> None:
    """Poll ``predicate`` until it is true; AssertionError (naming ``what``) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout} s")
        time.sleep(interval)


def can_make_users() -> bool:
    """Whether this process may make a second Unix user (root, with useradd)."""
    return os.geteuid() == 0 and shutil.which("useradd") is not None


@contextlib.contextmanager
def unix_user() -> Iterator[str]:
    """A second Unix user of this machine, removed afterwards."""
    name = f"rc{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/false", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


def second_user() -> Iterator[str]:
    """A fixture's body: a second Unix user, removed afterwards (skips unless root)."""
    if not can_make_users():
        pytest.skip("needs root and useradd to make a second user")
    with unix_user() as name:
        yield name
