"""``collector wait`` through the console script: reached, reached while waiting, timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import sqlalchemy as sa

from collector.errors import RET_CONFIG, RET_FAILED
from tests.helpers import collector


def add_rows(db_url: str, count: int) -> None:
    """Append ``count`` rows to table ``data`` (created if missing)."""
    engine = sa.create_engine(db_url)
    table = sa.Table("data", sa.MetaData(), sa.Column("i", sa.Integer))
    with engine.begin() as conn:
        table.create(conn, checkfirst=True)
        conn.execute(table.insert(), [{"i": i} for i in range(count)])
    engine.dispose()


def test_returns_at_once_when_the_table_is_full(sqlite_url: str) -> None:
    add_rows(sqlite_url, 3)
    done = collector("wait", "--db-url", sqlite_url, "--table", "data", "--count", "3")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "data: 3 rows"


def test_waits_for_a_table_that_does_not_exist_yet(sqlite_url: str) -> None:
    args = ["--db-url", sqlite_url, "--table", "data", "--count", "5", "--interval", "0.05"]
    waiting = subprocess.Popen(
        [sys.executable, "-m", "collector", "wait", *args, "--timeout", "30"],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    assert waiting.poll() is None  # still waiting: the database does not even exist
    add_rows(sqlite_url, 2)
    time.sleep(0.3)
    assert waiting.poll() is None  # 2 of 5
    add_rows(sqlite_url, 3)
    _, stderr = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, stderr
    assert stderr.splitlines()[-1] == "data: 5 rows"
    assert "rows/s" in stderr  # the tqdm bar shows a rate


def test_timeout_exits_1_with_a_message(sqlite_url: str) -> None:
    add_rows(sqlite_url, 1)
    args = ["--db-url", sqlite_url, "--table", "data", "--count", "5", "--timeout", "0.5"]
    started = time.monotonic()
    done = collector("wait", *args)
    assert done.returncode == RET_FAILED
    assert 0.5 <= time.monotonic() - started < 20
    last = done.stderr.splitlines()[-1]
    assert last == "Error: timed out after 0.5 s: table data has 1 of 5 rows"


def test_missing_database_counts_as_zero_and_is_not_created(tmp_path) -> None:
    path = tmp_path / "absent.db"
    args = ["--db-url", f"sqlite:///{path}", "--table", "data", "--count", "1", "--timeout", "0.2"]
    done = collector("wait", *args)
    assert done.returncode == RET_FAILED
    assert done.stderr.splitlines()[-1].endswith("table data has 0 of 1 rows")
    assert not os.path.exists(path)


def test_bad_table_name_never_reaches_sql(sqlite_url: str) -> None:
    args = ["--db-url", sqlite_url, "--table", "data; drop table x", "--count", "1"]
    done = collector("wait", *args)
    assert done.returncode == RET_CONFIG
    assert done.stderr == (
        "Error: bad table name 'data; drop table x': must match [A-Za-z][A-Za-z0-9_]{0,62}\n"
    )


def test_bad_database_url_is_one_line() -> None:
    done = collector("wait", "--db-url", "not a url", "--table", "data", "--count", "1")
    assert done.returncode == RET_CONFIG
    assert done.stderr == "Error: not a database URL: not a url\n"
