"""Where the database lives: a relative SQLite path is made absolute at start, the connection file
of ``collector serve`` names the database, commands read that one from any folder, and ``collector
wait`` says which database it reads and warns when no collector has been seen on the queue."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from collector.cli import main
from collector.settings import Settings, absolute_db_url, resolve_db_url
from collector.stream import GROUP
from tests.helpers import REAL_REDIS_URL
from workers.connection import Found, ServerInfo, connection_file

NAMES = st.text(st.sampled_from("abcxyz_-.0123456789"), min_size=1, max_size=12).filter(
    lambda name: name not in (".", "..")
)


@given(folder=NAMES, name=NAMES)
def test_a_relative_sqlite_path_is_made_absolute_against_the_current_directory(folder, name):
    relative = f"{folder}/{name}.db"
    assert absolute_db_url(f"sqlite:///{relative}") == f"sqlite:///{os.path.abspath(relative)}"
    assert absolute_db_url(f"sqlite+pysqlite:///{relative}?timeout=5") == (
        f"sqlite+pysqlite:///{os.path.abspath(relative)}?timeout=5"
    )


@given(name=st.text(st.characters(exclude_characters="/?\x00", codec="utf-8"), min_size=1))
def test_any_relative_file_name_names_the_same_file_once_absolute(name):
    url = f"sqlite:///{name}"
    before = make_url(url).database
    if before in (None, "", ":memory:") or before.startswith("file:"):
        return  # not a relative path: left as it is (below)
    assert make_url(absolute_db_url(url)).database == os.path.abspath(before)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////srv/data/results.db",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file:results.db?uri=true",
        "postgresql://user:pw@host/db",
        "not a url",
    ],
)
def test_other_urls_are_left_as_they_are(url):
    assert absolute_db_url(url) == url


def write_file(db_url: str | None, port: int = 6390) -> Path:
    """A connection file naming a server that does not answer, and ``db_url``."""
    info = ServerInfo(
        name="default", url=f"redis://:pw@127.0.0.1:{port}/0", host="127.0.0.1", port=port,
        pid=os.getpid(), hostname="node1", started="2026-11-29T00:00:00+00:00", queue="q:serve",
        db_url=db_url,
    )  # fmt: skip
    path = connection_file()
    info.write(path)
    return path


def test_settings_take_the_database_from_flag_then_variable_then_file_then_default(
    tmp_path, monkeypatch
):
    assert Settings.from_env().db_url == f"sqlite:///{tmp_path / 'results.db'}"  # absolute
    write_file(f"sqlite:///{tmp_path / 'served.db'}")
    assert Settings.from_env().db_url == f"sqlite:///{tmp_path / 'served.db'}"
    monkeypatch.setenv("COLLECTOR_DB_URL", "sqlite:///env.db")
    assert Settings.from_env().db_url == f"sqlite:///{tmp_path / 'env.db'}"
    assert Settings.from_env(db_url="sqlite:///flag.db").db_url == (
        f"sqlite:///{tmp_path / 'flag.db'}"
    )
    monkeypatch.delenv("COLLECTOR_DB_URL")
    given_redis = Settings.from_env(redis_url="redis://other:6379/0")  # serve's own call
    assert given_redis.db_url == f"sqlite:///{tmp_path / 'results.db'}"
    assert resolve_db_url(None, Found(None)) == f"sqlite:///{tmp_path / 'results.db'}"


def test_the_start_log_line_names_the_absolute_database(tmp_path):
    settings = Settings.from_env(redis_url="redis://h:6379/0", db_url="sqlite:///rel.db")
    assert f"db=sqlite:///{tmp_path / 'rel.db'} " in settings.describe()


def add_rows(path: Path, count: int) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    table = sa.Table("data", sa.MetaData(), sa.Column("i", sa.Integer))
    with engine.begin() as conn:
        table.create(conn, checkfirst=True)
        conn.execute(table.insert(), [{"i": i} for i in range(count)])
    engine.dispose()


def test_wait_from_another_folder_reads_the_files_database_and_says_so(tmp_path, monkeypatch):
    served = tmp_path / "a" / "results.db"
    served.parent.mkdir()
    add_rows(served, 3)
    write_file(f"sqlite:///{served}", port=1)  # nothing listens on port 1
    elsewhere = tmp_path / "b"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(main, ["wait", "--table", "data", "--count", "3"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == f"database  sqlite:///{served}"
    assert lines[1].startswith("warning: cannot tell whether a collector runs: ")
    assert lines[-1] == "data: 3 rows"
    assert not (elsewhere / "results.db").exists()


def test_a_bad_database_url_in_the_file_is_one_line_naming_it(tmp_path):
    path = write_file("nope://x")
    result = CliRunner().invoke(main, ["wait", "--table", "data", "--count", "1"])
    assert result.exit_code != 0
    assert result.stderr.splitlines()[-1].startswith(f"Error: {path}: ")


@pytest.mark.redis
def test_wait_warns_once_when_no_collector_was_seen_and_not_when_one_was(
    real_redis: redis.Redis, queue: str, tmp_path
):
    add_rows(tmp_path / "results.db", 1)
    args = ["wait", "--redis-url", REAL_REDIS_URL, "--queue", queue, "-t", "data", "-n", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert warnings == [
        f"warning: no collector has been seen on queue {queue} at {REAL_REDIS_URL}: rows arrive "
        "only while `collector serve` or `collector run` drains it"
    ]
    real_redis.xgroup_create(queue, GROUP, id="0", mkstream=True)
    real_redis.xadd(queue, {"x": "1"})
    real_redis.xreadgroup(GROUP, "node1", {queue: ">"}, count=1)  # a consumer now
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
