"""``collector export`` through the console script: CSV, JSON lines and Parquet read back equal
the table; chunked; unknown tables and bad names fail in one line."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from collector.cli import main
from collector.db import make_engine
from collector.errors import RET_CONFIG, RET_FAILED
from collector.store import Schema, Store, kind_of_sql
from tests.helpers import collector, typed_rows
from workers.record import Record

TS = 1_750_000_000.25


def fill(db_url: str, count: int = 40) -> None:
    """Table ``data`` with ints, floats, awkward text, bools, NULLs, datetimes and JSON."""
    records = [
        Record(
            id=f"r{i:03d}",
            table="data",
            data={
                "I": i - 20,
                "x": i / 7 if i % 5 else None,
                "tiny": 1e-300 * i,
                "text": ["plain", "a,b", 'say "hi"', "two\nlines", "ünï"][i % 5],
                "ok": i % 2 == 0,
                "at": dt.datetime(2024, 1, 1, 12, 0, i % 60, 123456),
                "tags": {"i": i, "l": [1, 2]},
            },
            ts=TS + i,
            host="node1",
            pid=100 + i,
            job=f"job-{i}" if i % 3 else None,
        )
        for i in range(count)
    ]
    engine = make_engine(db_url)
    assert Store(engine, Schema()).write(records) == []
    engine.dispose()


def column_kinds(db_url: str) -> dict[str, str]:
    import sqlalchemy as sa

    engine = make_engine(db_url)
    with engine.connect() as conn:
        table = sa.Table("data", sa.MetaData(), autoload_with=conn)
    engine.dispose()
    return {c.name: kind_of_sql(c.type) for c in table.columns}


def parse_csv_cell(kind: str, text: str) -> object:
    if text == "":
        return None
    parse = {
        "int": int, "float": float, "bool": {"true": True, "false": False}.__getitem__,
        "datetime": dt.datetime.fromisoformat, "json": json.loads,
    }.get(kind, str)  # fmt: skip
    return parse(text)


def test_csv_round_trip_equals_the_table(sqlite_url: str, tmp_path) -> None:
    fill(sqlite_url)
    out = tmp_path / "data.csv"
    args = ["data", "--db-url", sqlite_url, "--format", "csv", "-o", str(out), "--chunk-size", "7"]
    done = collector("export", *args)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == f"exported 40 rows of data to {out}"
    kinds = column_kinds(sqlite_url)
    with open(out, newline="", encoding="utf-8") as handle:
        header, *lines = list(csv.reader(handle))
    assert header == list(kinds)
    back = [
        {name: parse_csv_cell(kinds[name], cell) for name, cell in zip(header, line, strict=True)}
        for line in lines
    ]
    assert back == typed_rows(sqlite_url, "data")


def test_jsonl_round_trip_equals_the_table(sqlite_url: str) -> None:
    fill(sqlite_url)
    done = collector("export", "data", "--db-url", sqlite_url, "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    back = [json.loads(line) for line in done.stdout.splitlines()]
    for row in back:
        row["_ts"] = dt.datetime.fromisoformat(row["_ts"])
        row["at"] = dt.datetime.fromisoformat(row["at"])
    assert back == typed_rows(sqlite_url, "data")


def test_stdout_and_file_hold_the_same_bytes(sqlite_url: str, tmp_path) -> None:
    fill(sqlite_url, 5)
    out = tmp_path / "data.csv"
    to_file = collector("export", "data", "--db-url", sqlite_url, "-o", str(out))
    to_stdout = subprocess.run(
        [sys.executable, "-m", "collector", "export", "data", "--db-url", sqlite_url],
        capture_output=True,
        check=True,
    )
    assert to_file.returncode == 0
    assert out.read_bytes() == to_stdout.stdout


def test_parquet_round_trip_keeps_the_types(sqlite_url: str, tmp_path) -> None:
    import pyarrow.parquet as pq

    fill(sqlite_url)
    out = tmp_path / "data.parquet"
    args = ["data", "--db-url", sqlite_url, "--format", "parquet", "-o", str(out)]
    done = collector("export", *args, "--chunk-size", "16")
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    assert str(table.schema.field("I").type) == "int64"
    assert str(table.schema.field("at").type) == "timestamp[us]"
    assert pq.ParquetFile(out).num_row_groups == 3
    back = table.to_pylist()
    for row in back:
        row["tags"] = json.loads(row["tags"])
    assert back == typed_rows(sqlite_url, "data")


def test_parquet_without_pyarrow_says_what_to_install(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(sqlite_url, 1)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    result = CliRunner().invoke(
        main, ["export", "data", "--db-url", sqlite_url, "--format", "parquet", "-o", "x.pq"]
    )
    assert result.exit_code == RET_FAILED
    assert result.output == (
        "Error: parquet export needs pyarrow: pip install 'result-collector[data]'\n"
    )


def test_unknown_table_is_one_line_and_writes_no_file(sqlite_url: str, tmp_path) -> None:
    fill(sqlite_url, 1)
    out = tmp_path / "nosuch.csv"
    done = collector("export", "nosuch", "--db-url", sqlite_url, "-o", str(out))
    assert done.returncode == RET_FAILED
    assert done.stderr == f"Error: no table 'nosuch' in {sqlite_url}\n"
    assert list(tmp_path.glob("*nosuch*")) == []


def test_bad_table_name_never_reaches_sql(sqlite_url: str) -> None:
    fill(sqlite_url, 1)
    done = collector("export", 'data" --', "--db-url", sqlite_url)
    assert done.returncode == RET_CONFIG
    rule = "[A-Za-z][A-Za-z0-9_]{0,62}"
    assert done.stderr == f"Error: bad table name 'data\" --': must match {rule}\n"


@pytest.mark.postgres
def test_postgres_export_streams_and_masks_the_password(pg_url: str) -> None:
    fill(pg_url, 25)
    done = collector("export", "data", "--db-url", pg_url, "--format", "jsonl", "--chunk-size", "4")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["_id"] for line in done.stdout.splitlines()] == [
        row["_id"] for row in typed_rows(pg_url, "data")
    ]
    import sqlalchemy as sa

    with_password = sa.engine.make_url(pg_url).set(password="s3cret").render_as_string(False)
    missing = collector("export", "nosuch", "--db-url", with_password)
    assert missing.returncode == RET_FAILED
    assert "s3cret" not in missing.stderr
    assert missing.stderr.startswith(
        "Error: no table 'nosuch' in postgresql+psycopg://postgres:***@"
    )
