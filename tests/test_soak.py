"""The soak of combined faults (scripts/soak) as part of the suite: a short run on SQLite, on
PostgreSQL and on MariaDB with fixed seeds must find nothing, and a run against a collector with
a deliberate defect must fail, naming the records it lost. Marked ``soak`` (a few minutes of
CPU): deselect locally with ``-m 'not soak'``; CI runs them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.helpers import IN_CI, REAL_MYSQL_URL, REAL_PG_URL

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.soak, pytest.mark.slow, pytest.mark.timeout(900)]


def soak(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is not installed (CI=true: a missing service is a failure)")
        pytest.skip("redis-server is not installed")
    argv = [sys.executable, "-m", "scripts.soak", *args]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=840)
    print(proc.stdout[-20000:], proc.stderr[-5000:], sep="\n")
    return proc


def require(title: str, url: str) -> None:
    """Skip locally, fail in CI, when the machine's database server at ``url`` does not answer."""
    engine = sa.create_engine(url)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        if IN_CI:
            pytest.fail(
                f"{title} is not reachable (CI=true: a missing service is a failure): {exc}"
            )
        pytest.skip(f"{title} is not reachable: {exc}")
    finally:
        engine.dispose()


def summary(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SOAK ")]
    assert len(lines) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    return lines[0]


def test_short_soak_on_sqlite_finds_nothing() -> None:
    proc = soak("--seed", "101", "--minutes", "1", "--db", "sqlite")
    line = summary(proc)
    assert proc.returncode == 0, line
    assert " lost=0 dup=0 phantom=0 " in line and line.endswith(" findings=0 PASS")


@pytest.mark.postgres
def test_short_soak_on_postgresql_finds_nothing() -> None:
    require("PostgreSQL", REAL_PG_URL)
    proc = soak("--seed", "202", "--minutes", "1", "--db", "postgresql")
    line = summary(proc)
    assert proc.returncode == 0, line
    assert " lost=0 dup=0 phantom=0 " in line and line.endswith(" findings=0 PASS")


@pytest.mark.mysql
def test_short_soak_on_mariadb_finds_nothing() -> None:
    require("MariaDB", REAL_MYSQL_URL)
    proc = soak("--seed", "7", "--minutes", "1", "--db", "mysql")  # the seed that first failed
    line = summary(proc)
    assert proc.returncode == 0, line
    assert " lost=0 dup=0 phantom=0 " in line and line.endswith(" findings=0 PASS")


def test_the_soak_names_the_records_a_defective_collector_lost() -> None:
    command = f"{sys.executable} -m tests.soak_dropper"  # run from the repository's root
    proc = soak("--seed", "303", "--minutes", "0.5", "--db", "sqlite", "--collector-command",
                command)  # fmt: skip
    line = summary(proc)
    kept = re.search(r"soak: logs and receipts kept in (\S+)", proc.stdout)
    assert proc.returncode == 1 and kept, line
    work = Path(kept.group(1))
    try:
        log = (work / "logs" / "collector-c1.log").read_text()
        dropped = set(re.findall(r"soak-dropper: dropped ([0-9a-f]{32})", log))
        findings = (work / "findings.txt").read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    section = findings.split("FINDING lost:")[1].split("\nFINDING ")[0]
    listed = re.findall(r"^  \w+/([0-9a-f]{32}) ", section, re.MULTILINE)
    lost = set(listed)
    assert lost, findings[:3000]
    assert lost <= dropped  # none blamed that the defect did not drop
    assert re.search(r" lost=[1-9]\d* ", line)
    assert all(rid in proc.stdout for rid in listed[:10])  # the first ones, in the report itself
