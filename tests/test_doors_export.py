"""``collector export --format jsonl`` writes only JSON: NaN and infinities become null, at any
depth, and every other value comes back as it was."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.db import make_engine
from collector.errors import RET_FAILED
from collector.output.formats import write_csv, write_jsonl
from collector.store import Schema, Store
from tests.helpers import collector
from workers.record import Record


def strict(line: str) -> Any:
    """``line`` parsed as a strict JSON reader (jq, JavaScript) would: no NaN, no Infinity."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_nan_and_infinities_export_as_null(
    db: str, sqlite_url: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if db == "postgres" else sqlite_url
    values = [float("nan"), float("inf"), -float("inf"), 1.5]
    records = [Record(id=f"r{i}", table="data", data={"x": v}) for i, v in enumerate(values)]
    engine = make_engine(url)
    assert Store(engine, Schema()).write(records) == []
    engine.dispose()
    done = collector("export", "data", "--db-url", url, "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    rows = sorted((strict(line) for line in done.stdout.splitlines()), key=lambda r: r["_id"])
    assert [r["x"] for r in rows] == [None, None, None, 1.5]


FLOATS = st.floats()  # NaN and infinities among them
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | FLOATS | st.text(max_size=6),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3)
    ),
    max_leaves=12,
)


def finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [finite(v) for v in value]
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    return value


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(VALUES, min_size=3, max_size=3), max_size=6), st.integers(1, 4))
def test_random_values_export_as_strict_json_and_csv(rows: list[list[Any]], chunk: int) -> None:
    columns = [sa.Column(name, sa.JSON) for name in ("a", "b", "c")]
    chunks = [rows[i : i + chunk] for i in range(0, len(rows), chunk)]
    sink = io.BytesIO()
    write_jsonl(columns, chunks, sink)
    lines = sink.getvalue().decode().splitlines()
    assert [strict(line) for line in lines] == [
        dict(zip("abc", finite(row), strict=True)) for row in rows
    ]
    sink = io.BytesIO()
    write_csv(columns, chunks, sink)
    header, *back = csv.reader(io.StringIO(sink.getvalue().decode(), newline=""))
    assert header == ["a", "b", "c"]
    assert back == [[csv_text(v) for v in row] for row in rows]


def csv_text(value: Any) -> str:
    """What a CSV cell holds for ``value``: strict JSON for a list or dict."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(finite(value), ensure_ascii=False)
    return str(value)


HAND_WRITTEN = ["t = 'garbage'", "t = 12345", "_ts = 'x'", "j = '{not json'", "f = 'abc'",
                "i = 1e300", "s = x'ff00'"]  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("update", HAND_WRITTEN)
def test_a_value_written_by_hand_that_its_column_cannot_read_is_one_line(
    tmp_path: Any, update: str, fmt: str
) -> None:
    import datetime
    import sqlite3

    url = f"sqlite:///{tmp_path / 'r.db'}"
    data = {"t": datetime.datetime(2020, 1, 1), "j": [1], "f": 1.5, "i": 2, "s": "x"}
    engine = make_engine(url)
    assert Store(engine, Schema()).write([Record(id="r", table="data", data=data)]) == []
    engine.dispose()
    with sqlite3.connect(tmp_path / "r.db") as conn:  # SQLite takes any value in any column
        conn.execute(f"UPDATE data SET {update}")  # noqa: S608 (the test's own text)
    out = tmp_path / f"out.{fmt}"
    done = collector("export", "data", "--db-url", url, "--format", fmt, "-o", str(out))
    if fmt != "parquet" and update.split()[0] in "fis":
        assert done.returncode == 0, done.stderr  # CSV and JSON lines show what is stored
        return
    assert done.returncode == RET_FAILED
    [line] = done.stderr.splitlines()
    assert line.startswith(
        f"Error: cannot export data as {fmt}: a stored value cannot be read as its column's type"
    )
    assert [p.name for p in tmp_path.iterdir() if "out" in p.name] == []  # no part left


@pytest.mark.parametrize("where", ["nowhere/out.csv", "file/out.csv"])
def test_an_output_file_that_cannot_be_made_is_one_line(tmp_path: Any, where: str) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    assert Store(engine, Schema()).write([Record(id="r", table="data", data={"x": 1})]) == []
    engine.dispose()
    (tmp_path / "file").write_text("")
    out = tmp_path / where
    done = collector("export", "data", "--db-url", url, "-o", str(out))
    reason = "No such file or directory" if where.startswith("no") else "Not a directory"
    assert (done.returncode, done.stderr) == (RET_FAILED, f"Error: cannot write {out}: {reason}\n")


def test_a_text_hdf5_cannot_hold_is_one_line(tmp_path: Any) -> None:
    pytest.importorskip("h5py")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    record = Record(id="r", table="data", data={"s": "a\x00b"})  # a NUL: no HDF5 string holds it
    assert Store(engine, Schema()).write([record]) == []
    engine.dispose()
    out = tmp_path / "out.h5"
    done = collector("export", "data", "--db-url", url, "--format", "hdf5", "-o", str(out))
    assert done.returncode == RET_FAILED
    assert done.stderr == (
        "Error: cannot export data as hdf5: a stored value cannot be read as its column's type "
        "or written in this format (VLEN strings do not support embedded NULLs; after row 0)\n"
    )
    assert not out.exists()
