"""Nothing that reaches the queue may harm the database, and no secret reaches the screen:
input limits, the identifier rule, password masking, Redis ACL and TLS, the SQLite writer lock."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
import redis
import sqlalchemy as sa
from click.testing import CliRunner
from faults.servers import RedisServer, collector, free_port, stored_ids, wait_until

from collector.cli import main
from collector.daemon import Collector
from collector.settings import Settings
from workers import Emitter
from workers.entry import decode_records
from workers.jobinfo import host_name
from workers.spool import Spool

PASSWORD = "s3cret-Pw0rd"
TIGHT = {"max_depth": 3, "max_fields": 4, "max_str_len": 10, "max_record_bytes": 300}
OVER_LIMIT = {
    "deep": {"v": [[[1]]]},
    "wide": {f"c{i}": i for i in range(5)},
    "long_str": {"s": "x" * 11},
    "long_bytes": {"b": b"x" * 11},
    "big": {f"k{i}": "y" * 9 for i in range(4)} | {"l": list(range(200))},
}
REASONS = {
    "deep": "nested deeper than 3",
    "wide": "5 fields exceed the limit of 4",
    "long_str": "not valid msgpack",
    "long_bytes": "not valid msgpack",
    "big": "exceeds the limit of 300",
}


def emit_limit_cases(emitter: Emitter) -> None:
    emitter.emit({"v": [[1]], "s": "x" * 10}, key="ok")
    for key, data in OVER_LIMIT.items():
        emitter.emit(data, key=key)


def dead_letters(client, queue: str) -> dict[str, str]:
    """Dead letters of ``queue`` as record id -> reason."""
    return {
        msgpack.unpackb(f[b"m"], timestamp=3)["id"]: f[b"reason"].decode()
        for _, f in client.xrange(f"{queue}:dead")
    }


def test_each_limit_dead_letters_its_record(fake_redis, queue, sqlite_url) -> None:
    settings = Settings.from_env(
        db_url=sqlite_url, queue=queue, max_wait=0.05, consumer="t", **TIGHT
    )
    emit_limit_cases(Emitter(queue=queue, client=fake_redis))
    daemon = Collector(settings, client=fake_redis)
    daemon.start()
    assert daemon.run_once() == 6
    daemon.close()
    reasons = dead_letters(fake_redis, queue)
    assert set(reasons) == set(OVER_LIMIT)
    for key, fragment in REASONS.items():
        assert fragment in reasons[key], (key, reasons[key])
    assert stored_ids(sqlite_url) == ["ok"]


@pytest.mark.redis
@pytest.mark.slow
def test_limit_flags_of_collector_run(real_redis, queue, sqlite_url) -> None:
    emit_limit_cases(Emitter(queue=queue, client=real_redis))
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TIGHT.items()]
    proc = collector(
        "run", "--redis-url", _url(real_redis),
        "--db-url", sqlite_url, "--queue", queue, "--max-wait", "0.1", *flags,
    )  # fmt: skip
    try:
        wait_until(lambda: real_redis.xlen(f"{queue}:dead") == 5, 30, "five dead letters")
        wait_until(lambda: stored_ids(sqlite_url) == ["ok"], 30, "the good record")
    finally:
        assert proc.stop() == 0
    assert set(dead_letters(real_redis, queue)) == set(OVER_LIMIT)


def _url(client) -> str:
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/{kw.get('db', 0)}"


@pytest.mark.parametrize(
    ("table", "data", "reason"),
    [
        ("sqlite_x", {"x": 1}, "table name 'sqlite_x': SQLite reserves names starting with"),
        ("_private", {"x": 1}, "bad table name '_private'"),
        ("results", {"_x": 1}, "bad column name '_x'"),
        ("results", {"a-b": 1}, "bad column name 'a-b'"),
        ("results", {"x; DROP TABLE results": 1}, "bad column name 'x; DROP TABLE results'"),
        ("t; DROP TABLE results", {"x": 1}, "bad table name 't; DROP TABLE results'"),
    ],
)
def test_bad_identifiers_are_refused_with_a_reason_not_mangled(
    fake_redis, settings, sqlite_url, table, data, reason
) -> None:
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    emitter.emit({"x": 0}, key="good")
    emitter.emit(data, table=table, key="bad")
    daemon = Collector(settings, client=fake_redis)
    daemon.start()
    daemon.run_once()
    daemon.close()
    assert dead_letters(fake_redis, settings.queue)["bad"].startswith(reason)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == ["results"]
        assert list(conn.scalars(sa.text("SELECT _id FROM results"))) == ["good"]
        assert [c["name"] for c in sa.inspect(conn).get_columns("results")][-1] == "x"
    engine.dispose()


def closed_url(password: str = PASSWORD) -> str:
    return f"redis://alice:{password}@127.0.0.1:{free_port()}/0"


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["status", "--json"],
        ["status", "--db-url", f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1:1/db"],
    ],
)
def test_cli_never_prints_the_password(argv) -> None:
    result = subprocess.run(
        [*collector_argv(), *argv, "--redis-url", closed_url()],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode in (4, 5)
    assert PASSWORD not in result.stdout + result.stderr
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.stderr


def test_collector_waiting_for_redis_never_logs_the_password(tmp_path) -> None:
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*collector_argv(), "run", "-v", "--db-url", "sqlite:///x.db",
             "--redis-url", closed_url()],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while log_path.read_text().count("redis unavailable") < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    output = log_path.read_text()
    assert PASSWORD not in output
    assert "redis=redis://alice:***@127.0.0.1:" in output
    assert "Traceback" not in output


def test_spool_flush_never_prints_the_password(tmp_path) -> None:
    Spool(tmp_path).append("q", [b"payload"])
    argv = ["spool", "flush", str(tmp_path), "--redis-url", closed_url()]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 5
    assert PASSWORD not in result.output
    assert len(Spool(tmp_path).files()) == 1


def test_emitter_warning_and_repr_never_show_the_password(tmp_path, caplog) -> None:
    emitter = Emitter(closed_url(), "q", emit_timeout=0, spool_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="workers"):
        emitter.emit({"x": 1})
        emitter.close()
    assert "spooling records" in caplog.text
    assert PASSWORD not in caplog.text + repr(emitter)


def collector_argv() -> list[str]:
    return [sys.executable, "-c", "import sys; from collector.cli import main; sys.exit(main())"]


@pytest.fixture
def acl_redis(tmp_path):
    """A private redis-server where the default user is off, ``alice`` needs a password, and
    ``jobs`` (for compute nodes) may only XADD to queue ``q``, ``drain`` has what a collector
    needs: the least-privilege users docs/security.md suggests."""
    server = RedisServer(
        tmp_path / "redis", "--user", "default", "off",
        "--user", "alice", "on", f">{PASSWORD}", "~*", "&*", "+@all",
        "--user", "jobs", "on", ">jobs-pw", "~q", "+xadd",
        "--user", "drain", "on", f">{PASSWORD}", "~q", "~q:dead", "+@stream", "+multi", "+exec",
        "+exists", "+ping",
    )  # fmt: skip
    server.start(ping_url=server.url(f"alice:{PASSWORD}@"))
    yield server
    server.stop()


@pytest.mark.slow
def test_acl_user_and_password_work_for_emitter_collector_and_cli(
    acl_redis, tmp_path, sqlite_url
) -> None:
    url = acl_redis.url(f"alice:{PASSWORD}@")
    emitter = Emitter(url, "q", spool_dir=tmp_path / "spool")
    ids = [emitter.emit({"x": 1}), *emitter.emit_many([{"x": 2}, {"x": 3}])]
    emitter.close()
    proc = collector("run", "--redis-url", url, "--db-url", sqlite_url, "--queue", "q")
    try:
        wait_until(lambda: sorted(stored_ids(sqlite_url)) == sorted(ids), 30, "three rows")
    finally:
        assert proc.stop() == 0
    assert PASSWORD not in proc.err
    result = CliRunner().invoke(
        main, ["status", "--json", "--redis-url", url, "--db-url", sqlite_url, "--queue", "q"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert (info["queue"], info["tables"], info["redis_url"]) == (
        0, {"results": 3}, acl_redis.url("alice:***@"),
    )  # fmt: skip
    assert PASSWORD not in result.output


@pytest.mark.slow
def test_a_jobs_user_that_may_only_xadd_can_emit(acl_redis, tmp_path) -> None:
    jobs = Emitter(acl_redis.url("jobs:jobs-pw@"), "q", spool_dir=tmp_path, emit_timeout=0)
    ids = [jobs.emit({"x": 1}), *jobs.emit_many([{"x": 2}])]
    assert Spool(tmp_path).files() == []
    with pytest.raises(redis.exceptions.NoPermissionError):
        jobs.client.xrange("q")
    jobs.close()
    admin = redis.Redis.from_url(acl_redis.url(f"alice:{PASSWORD}@"))
    assert [r.id for _, f in admin.xrange("q") for r in decode_records(f[b"m"])] == ids
    admin.close()


@pytest.mark.slow
def test_wrong_password_is_refused_and_the_record_spooled_at_once(acl_redis, tmp_path) -> None:
    delays: list[float] = []
    spool_dir = tmp_path / "spool"
    bad = Emitter(acl_redis.url("alice:wrong@"), "q", spool_dir=spool_dir, sleep=delays.append)
    rid = bad.emit({"x": 1})
    assert delays == []  # credentials are not retried for emit_timeout
    assert len(Spool(spool_dir).files()) == 1
    bad.close()
    status = CliRunner().invoke(main, ["status", "--redis-url", acl_redis.url("alice:wrong@")])
    assert status.exit_code == 5
    assert status.output.count("\n") == 1
    good = acl_redis.url(f"alice:{PASSWORD}@")
    flushed = CliRunner().invoke(main, ["spool", "flush", str(spool_dir), "--redis-url", good])
    assert flushed.exit_code == 0, flushed.output
    assert PASSWORD not in flushed.output
    check = Emitter(good, "q").client
    assert [r.id for _, f in check.xrange("q") for r in decode_records(f[b"m"])] == [rid]
    check.close()


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA) and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.mark.slow
def test_rediss_with_cert_options_in_the_url(tmp_path, sqlite_url) -> None:
    cert, key = make_cert(tmp_path)
    server = RedisServer(tmp_path / "redis")
    server.extra = (
        "--port", "0", "--tls-port", str(server.port), "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
    )  # fmt: skip
    url = f"rediss://127.0.0.1:{server.port}/0?ssl_cert_reqs=required&ssl_ca_certs={cert}"
    server.start(ping_url=url)
    try:
        emitter = Emitter(url, "q", spool_dir=tmp_path / "spool", emit_timeout=0)
        rid = emitter.emit({"x": 1})
        emitter.close()
        assert Spool(tmp_path / "spool").files() == []
        proc = collector("run", "--redis-url", url, "--db-url", sqlite_url, "--queue", "q")
        try:
            wait_until(lambda: stored_ids(sqlite_url) == [rid], 30, "the row over TLS")
        finally:
            assert proc.stop() == 0
        plain = url.replace("rediss://", "redis://").split("?")[0]
        refused = CliRunner().invoke(main, ["status", "--redis-url", plain, "--queue", "q"])
        assert refused.exit_code == 5
    finally:
        server.stop()


@pytest.mark.slow
def test_second_collector_on_one_sqlite_file_is_refused(tmp_path, sqlite_url) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    first = collector("run", "--redis-url", server.url(), "--db-url", sqlite_url, "--queue", "q")
    try:
        lock = Path(sqlite_url.removeprefix("sqlite:///") + ".collector.lock")
        holder = f"pid {first.pid} on host {host_name()}"
        wait_until(lambda: lock.exists() and lock.read_text() == f"{holder}\n", 30, "the lock")
        second = subprocess.run(
            [*collector_argv(), "run", "--redis-url", server.url(), "--db-url", sqlite_url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 3
        assert second.stderr == (
            f"Error: another collector ({holder}) already writes to {lock.parent}/"
            "results.db; SQLite takes one writer: stop it first, or use PostgreSQL for several "
            "collectors\n"
        )
        assert first.poll() is None
    finally:
        assert first.stop() == 0
        server.stop()
