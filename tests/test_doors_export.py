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
