"""The sweep ledger, Slurm ranges, CSV points, parameter keys and the sweep CLI's errors."""

from __future__ import annotations

import io
from collections.abc import Iterable

import msgpack
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from collector.cli import main
from collector.cli.points import grid_points
from collector.db import make_engine
from collector.errors import RET_CONFIG, ConfigError
from collector.sweeps import ledger
from collector.sweeps.ledger import PointRow
from collector.sweeps.missing import Rerun, array_ranges, write_csv
from workers.errors import DecodeError, EncodeError
from workers.keys import param_key, point_key, record_key
from workers.record import Record


@pytest.fixture
def engine(sqlite_url):
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


def test_plan_points_numbers_point_replicate_pairs() -> None:
    rows = ledger.plan_points("t", grid_points(["I=1:2:1", "J=a,b,c"]), 2)
    assert [(r.idx, r.point, r.replicate) for r in rows[:4]] == [(0, 0, 0), (1, 0, 1), (2, 1, 0),
                                                                 (3, 1, 1)]  # fmt: skip
    assert len(rows) == 12
    assert rows[11].params == {"I": 2, "J": "c"}
    assert rows[11].record_id == param_key("t", {"I": 2, "J": "c"}, 1)
    assert rows[3].job_kwargs(2) == {"I": 1, "J": "b", "replicate": 1}
    assert rows[3].job_kwargs(1) == {"I": 1, "J": "b"}


def test_grid_floats_and_typed_floats_give_one_key() -> None:
    grid_value = grid_points(["x=0:0.3:0.1"])[3]["x"]
    assert param_key("t", {"x": 0.1 + 0.2}, 0) == param_key("t", {"x": grid_value}, 0)
    assert param_key("t", {"x": 0.3}, 0) == param_key("t", {"x": grid_value}, 0)


@pytest.mark.parametrize(
    ("table", "points", "replicates", "message"),
    [
        ("t", [{"replicate": 1}], 1, "'replicate' is the replicate number"),
        ("t", [{"a": 1}, {"a": 1.0}], 1, "point 1 repeats point 0"),
        ("t", [{"a": 1}, {"b": 2}], 1, "point 1 has parameters ['b'], expected ['a']"),
        ("_t", [{"a": 1}], 1, "bad table name '_t'"),
        ("t", [{"a": 1}], 0, "replicates must be at least 1"),
        ("t", [], 1, "at least one point"),
    ],
)
def test_plan_points_refuses_bad_sweeps(table, points, replicates, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ledger.plan_points(table, points, replicates)


def test_declare_stores_the_sweep_once(engine) -> None:
    points = grid_points(["I=0:9:1", "J=1,2"])
    sweep, new = ledger.declare(engine, "s1", "t", points, 3, spec="--grid ...")
    assert new
    assert (sweep.points, sweep.replicates, sweep.total, sweep.params) == (20, 3, 60, ["I", "J"])
    again, new_again = ledger.declare(engine, "s1", "t", points, 3)
    assert (again, new_again) == (sweep, False)
    rows = ledger.point_rows(engine, "s1")
    assert [r.idx for r in rows] == list(range(60))
    assert rows[59].record_id == param_key("t", {"I": 9, "J": 2}, 2)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM _sweep_points")) == 60
    with pytest.raises(ConfigError, match="already exists with other points"):
        ledger.declare(engine, "s1", "t", points, 2)
    with pytest.raises(ConfigError, match="already exists"):
        ledger.declare(engine, "s1", "other", points, 3)


def test_declare_while_a_collector_commits_sqlite(engine, sqlite_url) -> None:
    """A collector's batch committed while a sweep is declared (just before its first write) is
    waited for, never 'database is locked' (SQLite's WAL refuses a reader's later write)."""
    from collector.store import Schema, Store

    store = Store(make_engine(sqlite_url), Schema())
    ledger.ensure_tables(engine)
    batches = [[Record("r1", "other", {"K": 1}, 1.0)]]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def commit_meanwhile(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("INSERT") and batches:
            assert store.write(batches.pop()) == []  # the collector's batch, committed

    sweep, new = ledger.declare(engine, "s1", "t", grid_points(["I=0:9:1"]))
    assert (new, sweep.points, not batches) == (True, 10, True)
    assert [row.idx for row in ledger.point_rows(engine, "s1")] == list(range(10))
    store.engine.dispose()


@pytest.mark.parametrize("same", [True, False])
def test_a_sweep_declared_meanwhile_elsewhere_is_that_sweep(engine, sqlite_url, same) -> None:
    """Two commands declare one name at once: the same sweep is a no-op for the second, another
    one refused, as when declared before."""
    other = make_engine(sqlite_url)
    ledger.ensure_tables(engine)
    first = [grid_points(["I=0:9:1" if same else "I=0:4:1"])]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def declare_meanwhile(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("INSERT") and first:
            ledger.declare(other, "s1", "t", first.pop())

    if same:
        sweep, new = ledger.declare(engine, "s1", "t", grid_points(["I=0:9:1"]))
        assert (new, sweep.points) == (False, 10)
    else:
        with pytest.raises(ConfigError, match="already exists with other points"):
            ledger.declare(engine, "s1", "t", grid_points(["I=0:9:1"]))
    other.dispose()


def test_load_names_the_declared_sweeps(engine) -> None:
    with pytest.raises(ConfigError, match="none yet"):
        ledger.load(engine, "nope")
    ledger.declare(engine, "b", "t", [{"a": 1}])
    ledger.declare(engine, "a", "t", [{"a": 2}])
    with pytest.raises(ConfigError, match=r"no sweep named 'nope' \(declared: a, b\)"):
        ledger.load(engine, "nope")


@pytest.mark.parametrize(
    ("indexes", "ranges"),
    [
        ([], ""),
        ([5], "5"),
        ([3, 4, 5, 6, 7, 12, *range(40, 50)], "3-7,12,40-49"),
        ([12, 4, 3, 4, 5], "3-5,12"),
        ([0, 2, 4], "0,2,4"),
        ([0, 1], "0-1"),
    ],
)
def test_array_ranges(indexes, ranges) -> None:
    assert array_ranges(indexes) == ranges


def slurm_indexes(spec: str) -> list[int]:
    """The task indexes sbatch reads from an --array list of ``a`` and ``a-b`` parts."""
    found: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        found += range(int(low), int(high or low) + 1)
    return found


@given(indexes=st.sets(st.integers(0, 4_000_000), max_size=300))
def test_array_ranges_give_sbatch_each_index_once_in_fewest_parts(indexes) -> None:
    spec = array_ranges(indexes)
    assert slurm_indexes(spec) == sorted(indexes) if indexes else spec == ""
    gaps = sum(1 for i in indexes if i - 1 not in indexes)  # one part per run of indexes
    assert spec.count(",") == max(gaps - 1, 0)


def rerun_of(indexes: Iterable[int]) -> Rerun:
    return Rerun([PointRow(i, i, 0, {"I": i}, f"k{i}") for i in indexes], retired=0)


@pytest.mark.parametrize(
    ("indexes", "notes"),
    [
        (range(1001), []),  # 0-1000: Slurm's default MaxArraySize is 1001
        ([3, 1001], ["indexes above 1000 need Slurm's MaxArraySize raised"]),
        ([4_000_000], ["indexes above 1000 need Slurm's MaxArraySize raised"]),
        ([4_000_001], ["indexes above 4000000 are past Slurm's largest MaxArraySize (4000001)"]),
        (range(0, 60_000, 2), ["indexes above 1000 need Slurm's MaxArraySize raised",
                               "the --array list is 174452 bytes, more than one command-line "
                               "argument may hold (131072): sbatch fails with 'Argument list too "
                               "long'; rerun them with --format csv"]),
    ],
)  # fmt: skip
def test_slurm_notes_say_what_sbatch_will_refuse(indexes, notes) -> None:
    assert rerun_of(indexes).slurm_notes() == notes


def test_csv_lists_index_replicate_and_parameters() -> None:
    rows = ledger.plan_points("t", [{"I": 0.5, "J": "x"}, {"I": 1, "J": "y"}], 2)
    out = io.StringIO()
    write_csv(rows[1:3], ["I", "J"], out)
    assert out.getvalue() == "index,replicate,I,J\n1,1,0.5,x\n2,0,1,y\n"


def test_point_and_record_keys_match_the_ledger() -> None:
    assert point_key("t", {"I": 1, "J": 2.0, "replicate": 1}) == param_key("t", {"I": 1, "J": 2}, 1)
    assert point_key("t", {"I": 1}) == param_key("t", {"I": 1}, 0)
    data = {"I": 1, "J": 2, "replicate": 1, "K": 3.5}
    assert record_key("t", data, ["I", "J", "replicate"]) == param_key("t", {"I": 1, "J": 2}, 1)
    assert record_key("t", data, ["J", "I"]) == param_key("t", {"I": 1, "J": 2}, 0)
    with pytest.raises(EncodeError, match="not in the record: L"):
        record_key("t", data, ["I", "L"])


def test_ledger_tables_cannot_receive_records() -> None:
    raw = msgpack.packb({"v": 1, "id": "x", "t": "_sweep_points", "ts": 1.0, "d": {"a": 1}})
    with pytest.raises(DecodeError, match="bad table name '_sweep_points'"):
        Record.decode(raw)


def cli(*args: str):
    return CliRunner().invoke(main, ["sweep", *args], catch_exceptions=False)


def test_cli_declare_reports_and_is_idempotent(sqlite_url) -> None:
    args = ["declare", "ij", "--table", "ij", "--grid", "I=0:1:0.5", "--grid", "J=1,2",
            "--replicates", "2", "--db-url", sqlite_url]  # fmt: skip
    first = cli(*args)
    assert first.exit_code == 0
    assert (
        first.stdout
        == "declared sweep 'ij': 6 points x 2 replicates = 12 results into table 'ij'\n"
    )
    second = cli(*args)
    assert second.stdout.startswith("already declared: sweep 'ij'")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["declare", "s", "--table", "t"], "give either --grid (one or more) or --points"),
        (["declare", "s", "--table", "t", "--grid", "I=1:0:1"], "range 1:0:1 is empty"),
        (["declare", "bad name", "--table", "t", "--grid", "I=1"], "bad sweep name 'bad name'"),
        (["status", "nope"], "no sweep named 'nope'"),
        (["missing", "s", "--format", "rq"], "sweep 's' was never submitted: give --func"),
        (["plot", "s", "--x", "I", "--value", "K", "-o", "p.png"], "table 't' does not exist yet"),
        (["plot", "s", "--x", "Q", "--value", "K", "-o", "p.png"], "'Q' is not a parameter"),
        (["submit", "m.f", "--sweep", "s2", "--grid", "I=1"], "--table is needed"),
    ],
)
def test_cli_errors_are_one_line(sqlite_url, args, message) -> None:
    assert (
        cli("declare", "s", "--table", "t", "--grid", "I=1,2", "--db-url", sqlite_url).exit_code
        == 0
    )
    result = cli(*args, "--db-url", sqlite_url)
    assert result.exit_code == RET_CONFIG
    assert result.stderr.startswith(f"Error: {message}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_cli_refuses_a_missing_sqlite_file(tmp_path) -> None:
    result = cli("status", "s", "--db-url", f"sqlite:///{tmp_path / 'none.db'}")
    assert result.exit_code == RET_CONFIG
    assert "does not exist" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_cli_slurm_ranges_note_what_sbatch_refuses(sqlite_url, fake_redis, monkeypatch) -> None:
    """A sweep with no results table yet: every point missing, the report changes nothing."""
    monkeypatch.setattr("redis.Redis.from_url", classmethod(lambda cls, url, **kw: fake_redis))
    assert cli("declare", "big", "--table", "big", "--grid", "I=0:1001:1",
               "--db-url", sqlite_url).exit_code == 0  # fmt: skip
    for _ in range(2):  # twice: a report leaves the sweep as it was
        result = cli("missing", "big", "--format", "slurm", "--retire-failed",
                     "--db-url", sqlite_url)  # fmt: skip
        assert (result.exit_code, result.stdout) == (0, "--array=0-1001\n")
        assert result.stderr == (
            "1002 points; the array index is _sweep_points.idx, the index column of --format csv\n"
            "note: indexes above 1000 need Slurm's MaxArraySize raised\n"
        )
    engine = make_engine(sqlite_url)
    assert not sa.inspect(engine).has_table("big")
    engine.dispose()
