"""python -m scripts.bench --quick runs every case end to end and writes its JSON and chart.

A smoke test only: no speed is asserted here (benchmarks print tables, they are not tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from faults.servers import free_port

from tests.helpers import REAL_MYSQL_URL, REAL_PG_URL, REAL_REDIS_URL

ROOT = Path(__file__).resolve().parents[1]
BENCH = [sys.executable, "-m", "scripts.bench"]  # run from ROOT, as README says
CASES = {
    "seed-direct",
    "seed-json",
    "ceiling",
    "drain",
    "end-to-end",
    "emit",
    "memory",
    "dask",
    "shards",
}


def bench_databases() -> set[str]:
    """The benchmark's temporary databases left on PostgreSQL and MariaDB."""
    names = set()
    for url, sql in (
        (REAL_PG_URL, "SELECT datname FROM pg_database WHERE datname LIKE :pattern"),
        (REAL_MYSQL_URL, "SELECT schema_name FROM information_schema.schemata "
                         "WHERE schema_name LIKE :pattern"),
    ):  # fmt: skip
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            names |= set(conn.execute(sa.text(sql), {"pattern": "rc_bench_%"}).scalars())
        engine.dispose()
    return names


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.mysql
@pytest.mark.slow
def test_quick_bench_runs_every_case_and_cleans_up(real_redis, pg_url, mysql_url, tmp_path) -> None:
    before = set(real_redis.scan_iter(match="bench:*")), bench_databases()
    out = tmp_path / "results"
    proc = subprocess.run(
        [*BENCH, "--quick", "--markdown", "--out", str(out), "--redis-url", REAL_REDIS_URL,
         "--pg-url", REAL_PG_URL, "--mysql-url", REAL_MYSQL_URL],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| case | setup | records | seconds | rate /s | notes |" in proc.stdout
    (json_path,) = out.glob("bench-*.json")
    payload = json.loads(json_path.read_text())
    assert {row["case"] for row in payload["results"]} == CASES
    mariadb = {(r["case"], r["setup"]) for r in payload["results"] if "mariadb" in r["setup"]}
    assert mariadb == {("ceiling", "mariadb-executemany"), ("ceiling", "mariadb-drain"),
                       ("drain", "mariadb")}  # fmt: skip
    assert {check["target"].split()[0] for check in payload["targets"]} >= {"drain", "e2e", "emit"}
    assert json_path.with_suffix(".png").stat().st_size > 0
    after = set(real_redis.scan_iter(match="bench:*")), bench_databases()
    assert after == before  # its queues and temporary databases are gone


def test_bad_case_name_is_a_one_line_error() -> None:
    proc = subprocess.run(
        [*BENCH, "--only", "drain,nonsense"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2
    assert "unknown case(s) nonsense" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unreachable_mariadb_is_a_one_line_error_without_the_password() -> None:
    port = free_port()  # nothing listens there
    url = f"mysql+pymysql://root:s3cret@127.0.0.1:{port}/test"
    proc = subprocess.run(
        [*BENCH, "--quick", "--only", "mariadb", "--mysql-url", url],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"bench: MariaDB at mysql+pymysql://root:***@127.0.0.1:{port}/test is ")
    assert "s3cret" not in proc.stderr + proc.stdout


def test_a_bench_childs_argv_holds_no_url(tmp_path: Path) -> None:
    """The URLs (which may carry passwords) reach a bench collector on its stdin: its argv, which
    every user of the machine can read in /proc, names neither."""
    from scripts.bench import common

    secret = "hunter2-" + tmp_path.name
    db_url = f"sqlite:///{tmp_path / 'x.db'}?password={secret}"
    redis_url = f"redis://:{secret}@127.0.0.1:{free_port()}/0"  # nothing listens: it ends
    proc = common.start_child(redis_url, db_url, "bench:argv", 1, 10)
    try:
        argv = " ".join(proc.args)  # type: ignore[arg-type]
        assert secret not in argv and "127.0.0.1" not in argv and "scripts.bench.child" in argv
    finally:
        proc.kill()
        proc.communicate()
