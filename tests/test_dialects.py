"""A database without a dialect module is refused in one line by every door (make_engine and
every command's --db-url), as are spellings SQLAlchemy does not take and a missing driver."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from collector.cli import main
from collector.db import make_engine
from collector.errors import RET_CONFIG, ConfigError
from tests.test_cli_errors import paths_with

SUPPORTED = (
    "supported: SQLite (sqlite:///path.db), PostgreSQL (postgresql+psycopg://user@host/db), "
    "MySQL/MariaDB (mysql+pymysql://user@host/db)"
)
REFUSED = {
    "mysql+mysqldb://u:secret@host/db": (
        "MySQL/MariaDB through driver 'mysqldb' is not supported: "
        "write mysql+pymysql:// (or mysql://)"
    ),
    "oracle://u:secret@host/db": f"database 'oracle' is not supported; {SUPPORTED}",
    "mssql+pyodbc://u:secret@dsn": f"database 'mssql' is not supported; {SUPPORTED}",
    "postgres://u:secret@host/db": "database URL scheme postgres:// is spelled postgresql+psycopg://",
    "postgresql+psycopg2://u:secret@host/db": (
        "PostgreSQL through driver 'psycopg2' is not supported: "
        "write postgresql+psycopg:// (or postgresql://)"
    ),
}


@pytest.mark.parametrize("url", REFUSED)
def test_make_engine_refuses_a_database_without_a_dialect_in_one_line(url) -> None:
    with pytest.raises(ConfigError) as caught:
        make_engine(url)
    assert str(caught.value) == REFUSED[url]


@given(
    st.from_regex(r"[a-z][a-z0-9]{1,12}", fullmatch=True).filter(
        lambda name: name not in ("sqlite", "postgresql", "postgres", "sqlite3")
    )
)
def test_any_other_scheme_is_refused_in_one_line(name) -> None:
    with pytest.raises(ConfigError) as caught:
        make_engine(f"{name}://u:secret@host/db")
    message = str(caught.value)
    assert "\n" not in message and "secret" not in message
    assert message.endswith(SUPPORTED) or "is spelled" in message


def test_a_postgresql_url_without_psycopg_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    for url in ("postgresql://u@host/db", "postgresql+psycopg://u@host/db"):
        with pytest.raises(ConfigError) as caught:
            make_engine(url)
        assert str(caught.value) == (
            "PostgreSQL needs the psycopg driver: pip install 'result-collector[postgres]'"
        )


@pytest.mark.postgres
def test_postgresql_without_a_driver_means_psycopg(pg_url) -> None:
    engine = make_engine(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    assert engine.dialect.driver == "psycopg"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()


@pytest.mark.parametrize("path", paths_with("--db-url"), ids=" ".join)
@pytest.mark.parametrize("url", ["oracle://u:secret@host/db", "postgres://u:secret@host/db"])
def test_every_command_refuses_an_unsupported_database_in_one_line(path, url) -> None:
    result = CliRunner().invoke(main, [*path, "--db-url", url])
    assert (result.exit_code, result.stderr) == (RET_CONFIG, f"Error: {REFUSED[url]}\n")
