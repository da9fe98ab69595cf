"""Fixtures: fakeredis and SQLite by default; the machine's real Redis, PostgreSQL and MariaDB
for tests marked ``redis`` / ``postgres`` / ``mysql``, which skip locally when a server is
absent but fail in CI; the same for the ``browser`` (the system's Chromium through playwright)."""

from __future__ import annotations

import dataclasses
import os
import sys
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
import sqlalchemy as sa

import workers
from collector.settings import Settings
from tests.helpers import IN_CI, REAL_MYSQL_URL, REAL_PG_URL, REAL_REDIS_URL

CHROMIUM = os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium")  # Debian's chromium package
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable: {exc}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service is a failure)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:
    """Each test starts with no COLLECTOR_* variables but a private spool directory and a
    private, empty config directory (never the user's connection files), a fresh default
    Emitter, and its own cwd."""
    for name in list(os.environ):
        if name.startswith("COLLECTOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLLECTOR_SPOOL_DIR", str(tmp_path / "spool"))  # never the user's own
    monkeypatch.setenv("COLLECTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    workers.reset()
    yield
    workers.reset()


@pytest.fixture
def module_file(tmp_path) -> Iterator[callable]:
    """Writes a uniquely named module into the cwd; forgets it from sys.modules afterwards."""
    names: list[str] = []

    def write(source: str) -> str:
        name = f"models_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    """An in-memory Redis shared by everything in one test."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    yield client
    client.close()


@pytest.fixture
def queue() -> str:
    """A queue name no other test (or person) uses: real-server tests clean up by this prefix."""
    return f"test:{uuid.uuid4().hex[:12]}:results"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture
def settings(sqlite_url: str, queue: str) -> Settings:
    """Collector settings for a fast test: small waits, SQLite in tmp_path, a private queue."""
    return Settings(db_url=sqlite_url, queue=queue, max_wait=0.05, consumer="test")


@pytest.fixture
def real_redis(queue: str) -> Iterator[redis.Redis]:
    """The machine's Redis; deletes every key under this test's queue name afterwards."""
    client = redis.Redis.from_url(REAL_REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable("Redis at " + REAL_REDIS_URL, exc)
    yield client
    keys = list(client.scan_iter(match=f"{queue}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    admin = sa.create_engine(REAL_PG_URL, isolation_level="AUTOCOMMIT")
    name = f"rc_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unavailable("PostgreSQL at " + REAL_PG_URL, exc)
    url = sa.engine.make_url(REAL_PG_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh MariaDB (or MySQL) database for this test, dropped afterwards."""
    admin = sa.create_engine(REAL_MYSQL_URL)
    name = f"rc_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unavailable("MariaDB at " + REAL_MYSQL_URL, exc)
    # Tests' own raw SQL quotes names the standard way ("name"): their plain engines take
    # ANSI_QUOTES from the URL, as the collector's engine sets it itself.
    url = sa.engine.make_url(REAL_MYSQL_URL).set(database=name)
    url = url.update_query_dict({"sql_mode": "ANSI_QUOTES,STRICT_ALL_TABLES"})
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    admin.dispose()


DATABASES = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]
URL_FIXTURES = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest) -> str:
    """This test's own empty database, once on each supported database: the one fixture a test
    that holds on every database takes."""
    return str(request.getfixturevalue(URL_FIXTURES[request.param]))


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium from the system (Debian's ``chromium``), headless, through playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable("playwright", exc)
    if not os.path.exists(CHROMIUM):
        _unavailable("Chromium", FileNotFoundError(f"{CHROMIUM} (apt-get install chromium)"))
    with sync_playwright() as play:
        launched = play.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def redis_env(real_redis, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Processes started from now on (Dask workers, commands) send to this test's queue on the
    machine's Redis; returns the collector settings for that queue."""
    monkeypatch.setenv("COLLECTOR_REDIS_URL", REAL_REDIS_URL)
    monkeypatch.setenv("COLLECTOR_QUEUE", settings.queue)
    return dataclasses.replace(settings, redis_url=REAL_REDIS_URL)
