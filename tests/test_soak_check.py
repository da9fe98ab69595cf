"""The soak's checker on hand-made receipts and rows: each kind of finding is found, and what the
contract allows (an int read back as its float after widening, an ``info`` record missing, a
loss inside a canary window) is not blamed."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from collector.db import make_engine
from collector.store import Schema, Store
from scripts.soak.canary import Window
from scripts.soak.check import Checker, Result, same
from scripts.soak.databases import Database, Mysql, Sqlite
from scripts.soak.receipts import FAIL, INFO, OK, Sent, read_file
from scripts.soak.report import summary
from workers.record import Record

REPO = Path(__file__).resolve().parents[1]
PID = 4242
KINDS = {"_id": "str", "_ts": "datetime", "_pid": "int", "_error": "str", "tag": "str",
         "i": "int", "w": "float", "js": "json"}  # fmt: skip


def sent(tag: str, rid: str | None, data: dict[str, Any], *, status: str = OK, seq: int = 1,
         poison: str | None = None, at: float = 100.0) -> Sent:  # fmt: skip
    return Sent(tag, rid, "results", {"tag": tag, **data}, poison, status, "p0", 1, PID, seq, at,
                at + 0.01 if status != INFO else None)  # fmt: skip


def row(rid: str, rec: Sent, **override: Any) -> dict[str, Any]:
    """The row of ``rec`` as the database gives it back; ``override`` changes columns (and their
    ``!null`` flags, unless given too)."""
    values: dict[str, Any] = dict.fromkeys(KINDS)
    values.update({"_id": rid, "_pid": PID, "_ts": 1.0}, **rec.data)
    values.update({k: v for k, v in override.items() if "!" not in k})
    flags = {f"{k}!null": v is None for k, v in values.items()}
    flags.update({k: v for k, v in override.items() if "!" in k})
    return {**values, **flags}


def check(recs: list[Sent], rows: list[dict[str, Any]], dead: list[Any] = (), *,
          windows: list[Window] = ()) -> Result:  # fmt: skip
    return Checker(recs, list(windows), []).run({"results": (KINDS, rows)}, list(dead))


def found(result: Result) -> dict[str, int]:
    return {k: len(v) for k, v in result.findings.items()}


def test_a_stored_ok_record_with_its_values_is_no_finding() -> None:
    rec = sent("a", "id1", {"i": 3, "w": 2, "js": [1, "x"]})
    result = check([rec], [row("id1", rec, w=2.0)])  # w widened: its int reads back as 2.0
    assert found(result) == {} and result.counts["stored"] == 1


def test_a_missing_ok_record_is_lost_and_a_row_nobody_sent_a_phantom() -> None:
    rec = sent("a", "id1", {"i": 3})
    other = sent("zz", "id9", {"i": 1})
    result = check([rec], [row("id9", other)])
    assert found(result) == {"lost": 1, "phantom": 1}
    assert "results/id1 (a)" in result.findings["lost"][0]


def test_a_value_altered_dropped_or_null_instead_of_missing_is_found() -> None:
    rec = sent("a", "id1", {"i": 3, "w": 2.5})
    result = check([rec], [row("id1", rec, i=4, w=None, js=None, **{"js!null": False})])
    assert found(result) == {"wrong value": 1, "value dropped (NULL stored)": 1,
                             "JSON null stored for a missing value": 1}  # fmt: skip


def test_under_a_key_the_first_emitted_success_stays() -> None:
    fail1 = sent("f1", "k1", {"_error": "ValueError: [f1]"}, seq=1)
    ok2 = sent("s2", "k1", {"i": 2}, seq=2)
    ok3 = sent("s3", "k1", {"i": 3}, seq=3)
    assert found(check([fail1, ok2, ok3], [row("k1", ok2)])) == {}
    later = check([fail1, ok2, ok3], [row("k1", ok3)])
    assert found(later) == {"wrong record under key": 1}
    text = later.findings["wrong record under key"][0]
    assert "holds s3, first emitted not refused is s2" in text
    assert found(check([fail1, ok2], [row("k1", fail1)])) == {"wrong record under key": 1}


def test_an_info_record_may_be_missing_or_stored_and_a_fail_record_never() -> None:
    info = sent("i1", "k1", {"i": 1}, status=INFO, seq=1)
    ok = sent("o2", "k1", {"i": 2}, seq=2)
    assert found(check([info, ok], [row("k1", ok)])) == {}
    assert found(check([info, ok], [row("k1", info)])) == {}
    unknown = sent("i9", None, {"i": 9}, status=INFO)
    assert found(check([unknown], [])) == {}
    assert found(check([unknown], [row("fresh", unknown)])) == {}
    failed = sent("x1", None, {"i": 9}, status=FAIL)
    assert found(check([failed], [row("fresh", failed)])) == {"stored though the call raised": 1}
    keyed = sent("x2", "k2", {"i": 9}, status=FAIL)
    assert found(check([keyed], [row("k2", keyed)])) == {"stored though the call raised": 1}
    stranger = sent("zz", "k2", {"i": 9})
    assert found(check([keyed], [row("k2", stranger)])) == {"phantom": 1}


def test_poison_is_dead_lettered_never_stored_and_good_records_never_dead_lettered() -> None:
    poison = sent("p", "id1", {"i": "x"}, poison="type conflict")
    assert found(check([poison], [], [("id1", "p", "type conflict")])) == {}
    assert found(check([poison], [])) == {"lost": 1}
    assert found(check([poison], [row("id1", poison)], [("id1", "p", "r")])) == {"poison stored": 1}
    assert found(check([poison], [row("id1", poison)])) == {"poison stored": 1}  # not also lost
    first = sent("p1", "k1", {"f": 2**53 + 1}, poison="inexact", seq=1)
    later = sent("g2", "k1", {"i": 2}, seq=2)
    assert found(check([first, later], [row("k1", first)])) == {"poison stored": 1}
    assert found(check([first, later], [row("k1", later)], [("k1", "p1", "r")])) == {}
    good = sent("g", "id2", {"i": 1})
    assert found(check([good], [row("id2", good)], [("id2", "g", "why")])) == {
        "dead-lettered good record": 1
    }


def test_a_loss_inside_a_canary_window_is_counted_apart_not_forgiven_outside() -> None:
    rec = sent("a", "id1", {"i": 1}, at=100.0)
    inside = check([rec], [], windows=[Window(99.0, 100.5, 3)])
    assert found(inside) == {} and inside.fsync_lost == ["results/id1 (a)"]
    outside = check([rec], [], windows=[Window(101.0, 102.0, 3)])
    assert found(outside) == {"lost": 1} and outside.fsync_lost == []


def test_the_same_id_twice_is_a_duplicate() -> None:
    rec = sent("a", "id1", {"i": 1})
    assert found(check([rec], [row("id1", rec), row("id1", rec)]))["dup"] >= 1


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@given(VALUES)
def test_a_value_is_the_same_as_itself_and_its_json_round_trip(value: Any) -> None:
    assert same(value, value, "json")
    assert same(value, json.loads(json.dumps(value)), "json")


@given(st.integers(-(2**70), 2**70))
def test_an_int_equals_a_float_only_in_a_float_column_and_only_exactly(n: int) -> None:
    assert not same(n, float(n), "int")
    assert same(n, float(n), "float") == (float(n) == n)
    assert not same(n, n == 1, "int") and not same(True, 1, "bool")


def test_receipts_give_ok_fail_and_info_and_skip_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "p0-1.jsonl"
    recs = [{"tag": t, "id": None, "table": "results", "data": {"b": {"$bytes": "00ff"}},
             "poison": None} for t in ("a", "b", "c")]  # fmt: skip
    lines = [{"slot": "p0", "life": 1, "pid": 7},
             {"n": 1, "at": 1.0, "call": "emit", "recs": [recs[0]]},
             {"n": 1, "at": 1.1, "ok": ["x"]},
             {"n": 2, "at": 2.0, "call": "emit", "recs": [recs[1]]},
             {"n": 2, "at": 2.1, "fail": "E"},
             {"n": 3, "at": 3.0, "call": "emit", "recs": [recs[2]]}]  # fmt: skip
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"n": 3, "at"')
    got = read_file(path)
    assert [(s.tag, s.id, s.status) for s in got] == [("a", "x", OK), ("b", None, FAIL),
                                                      ("c", None, INFO)]  # fmt: skip
    assert got[0].data == {"b": b"\x00\xff"} and got[0].pid == 7


# --- what each database refuses, and reading rows as the collector does ------------------------


def test_floats_mysql_cannot_store_are_expected_dead_letters_there_only() -> None:
    neg, nan, inf = (sent(t, f"id{t}", {"w": v}) for t, v in (("n", -0.0), ("a", math.nan),
                                                                ("i", -math.inf)))  # fmt: skip
    in_json = sent("j", "idj", {"js": [-0.0]})
    recs = [neg, nan, inf, in_json]
    dead = [(f"id{t}", t, "column 'w': refused") for t in "nai"]
    on_mysql = Checker(recs, [], [], refusal=Mysql.refusal).run(
        {"results": (KINDS, [row("idj", in_json)])}, dead
    )
    assert found(on_mysql) == {} and on_mysql.counts["dead"] == 3
    assert found(Checker(recs, [], [], refusal=Mysql.refusal).run(
        {"results": (KINDS, [row("idj", in_json)])}, [])) == {"lost": 3}  # fmt: skip
    good = [neg, inf, in_json]  # elsewhere they are good records (the workload sends no NaN)
    assert found(check(good, [row(r.id, r) for r in good], [dead[0], dead[2]])) == {
        "dead-lettered good record": 2
    }


# The soak's own process, which imports neither the collector's engine nor its dialects
READ = """
import json, sys
from pathlib import Path
from scripts.soak.databases import open_database
db = open_database(sys.argv[1], Path(sys.argv[2]), "unused")
db.url = sys.argv[3]
kinds, rows = db.read("results")
print(json.dumps([kinds, {k: [type(v).__name__, repr(v)] for k, v in rows[0].items()}]))
"""


def test_the_soak_reads_rows_as_the_collector_does(db_url: str, tmp_path: Path) -> None:
    values = {"f": 0.1 + 0.2, "js": {"a": [1, 1.5, None]}, "l": [True], "b": True,
              "blob": b"\x00\xff", "when": dt.datetime(2024, 1, 2, 3, 4, 5, 6)}  # fmt: skip
    engine = make_engine(db_url)
    assert Store(engine, Schema()).write([Record("k", "results", values)]) == []
    engine.dispose()
    kind = sa.make_url(db_url).get_backend_name()
    argv = [sys.executable, "-c", READ, kind, str(tmp_path), db_url]
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True).stdout
    kinds, got = json.loads(out)
    assert {k: kinds[k] for k in values} == {
        "f": "float",
        "js": "json",
        "l": "json",
        "b": "bool",
        "blob": "bytes",
        "when": "datetime",
    }
    assert {k: got[k] for k in values if k != "blob"} == {
        k: [type(v).__name__, repr(v)] for k, v in values.items() if k != "blob"
    }


def test_a_float_is_the_same_only_with_its_sign_and_sqlite_refuses_negative_zero() -> None:
    assert not same(-0.0, 0.0, "float") and not same(0.0, -0.0, "float")
    assert same(-0.0, -0.0, "float") and same(0, 0.0, "float") and not same([-0.0], [0.0], "json")
    assert Sqlite.refusal({"f": -0.0}) == "a float column cannot hold -0.0"
    assert Sqlite.refusal({"f": 0.0, "js": [-0.0], "i": 0}) is None
    assert Database.refusal({"f": -0.0}) is None  # PostgreSQL keeps it


def test_a_dead_letter_without_a_reason_is_its_own_finding_not_also_a_loss() -> None:
    poison = sent("p", "id1", {"i": "x"}, poison="type conflict")
    result = check([poison], [], [("id1", "p", "")])
    assert found(result) == {"dead letter without a reason": 1}
    assert result.findings["dead letter without a reason"] == ["results/id1 (p)"]


def test_the_summary_line_names_the_seed_the_faults_and_every_count() -> None:
    poison = sent("p", "id1", {"i": "x"}, poison="type conflict")
    good, gone = sent("g", "id2", {"i": 1}), sent("l", "id3", {"i": 2})
    late = sent("w", "id4", {"i": 3}, at=200.0)
    result = check([poison, good, gone, late], [row("id2", good)], [("id1", "p", "why")],
                   windows=[Window(199.0, 201.0, 2)])  # fmt: skip
    result.counts.update({"fault redis_kill": 1, "fault db_lock": 2})
    assert summary(9, result) == (
        "SOAK seed=9 faults[db_lock=2,redis_kill=1] emitted=4 stored=1 dead=1 lost=1 dup=0 "
        "phantom=0 lost_to_redis_fsync=1 findings=1 FAIL"
    )
    assert summary(9, check([good], [row("id2", good)])).endswith(" findings=0 PASS")
