"""``collector.read``: a table as a pandas DataFrame, with clear errors."""

from __future__ import annotations

import sys

import pytest

import collector
from collector.db import make_engine
from collector.errors import ConfigError, NoSuchTable
from collector.output.read import PANDAS_MISSING
from collector.store import META_COLUMNS, Schema, Store
from workers.record import Record


def fill(db_url: str) -> None:
    records = [
        Record(id=f"r{i}", table="sweep", data={"I": i, "K": i * 0.5, "tag": f"t{i}"}, ts=1e9 + i)
        for i in range(4)
    ]
    engine = make_engine(db_url)
    assert Store(engine, Schema()).write(records) == []
    engine.dispose()


def test_read_returns_the_table_as_a_dataframe(sqlite_url: str) -> None:
    fill(sqlite_url)
    frame = collector.read("sweep", sqlite_url)
    assert list(frame.columns) == [*META_COLUMNS, "I", "K", "tag"]
    assert frame.sort_values("_id")["K"].tolist() == [0.0, 0.5, 1.0, 1.5]
    assert str(frame["I"].dtype) == "int64"
    assert str(frame["_ts"].dtype).startswith("datetime64")


def test_db_url_defaults_to_the_environment_then_results_db(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    fill(f"sqlite:///{tmp_path / 'results.db'}")  # the default, in the test's cwd
    assert len(collector.read("sweep")) == 4
    other = tmp_path / "other.db"
    monkeypatch.setenv("COLLECTOR_DB_URL", f"sqlite:///{other}")
    with pytest.raises(NoSuchTable, match="does not exist"):
        collector.read("sweep")


def test_unknown_table_bad_name_and_missing_file(sqlite_url: str, tmp_path) -> None:
    fill(sqlite_url)
    with pytest.raises(NoSuchTable, match=f"^no table 'nope' in {sqlite_url}$"):
        collector.read("nope", sqlite_url)
    with pytest.raises(ConfigError, match="bad table name 'sweep; --'"):
        collector.read("sweep; --", sqlite_url)
    absent = tmp_path / "absent.db"
    with pytest.raises(NoSuchTable):
        collector.read("sweep", f"sqlite:///{absent}")
    assert not absent.exists()


def test_without_pandas_the_message_says_what_to_install(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(sqlite_url)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError) as caught:
        collector.read("sweep", sqlite_url)
    assert PANDAS_MISSING == "collector.read needs pandas: pip install 'result-collector[data]'"
    assert str(caught.value) == PANDAS_MISSING


def test_ints_of_a_column_with_missing_values_read_back_exactly(db_url: str) -> None:
    """An int column holding a NULL comes back as pandas' nullable Int64, never as float64
    (which rounds every int past 2**53 and turns the rest into floats)."""
    ints = [2**63 - 1, -(2**63), 2**53 + 1, 7]
    records = [Record(f"r{i}", "gaps", {"n": n}) for i, n in enumerate(ints)]
    engine = make_engine(db_url)
    assert Store(engine, Schema()).write([*records, Record("r9", "gaps", {"n": None})]) == []
    engine.dispose()
    frame = collector.read("gaps", db_url).sort_values("_id")
    assert str(frame["n"].dtype) == "Int64"
    assert frame["n"].tolist()[:4] == ints and frame["n"].isna().tolist() == [False] * 4 + [True]
    assert all(type(v) is int for v in frame["n"].tolist()[:4])
