"""Fixtures of the fault-injection suite: private servers the tests may stop, kill and restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faults.servers import PgCluster, RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server with AOF on, on a free port, stopped after the test."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["single", "pipeline"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every collector the test starts runs in one process, or pipelined (a reader and a writer
    process: COLLECTOR_PIPELINE=1, which the collectors inherit)."""
    monkeypatch.setenv("COLLECTOR_PIPELINE", "1" if request.param == "pipeline" else "0")
    return str(request.param)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A private PostgreSQL cluster (initdb once per session); a test may stop and restart it."""
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.remove()
