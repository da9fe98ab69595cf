"""MySQL/MariaDB specifics on the real server: values kept exactly, ids compared byte for byte,
JSON known as JSON on MariaDB, a row over max_allowed_packet refused, error codes sorted, a
crash between a schema change and the rows' commit, and a missing driver named in one line."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.cli import main
from collector.db import make_engine
from collector.dialects import mysql
from collector.errors import RET_CONFIG, DatabaseUnavailable
from collector.store import Schema, Store
from collector.store.classify import Fault, classify
from tests.helpers import typed_rows
from workers.record import Record

pytestmark = pytest.mark.mysql
T0 = 1_700_000_000.0
EXACT = {
    "f17": 0.1 + 0.2,  # 17 significant digits
    "third": 1 / 3,
    "tiny": 5e-324,
    "big": 1.7976931348623157e308,
    "when": dt.datetime(2024, 7, 1, 10, 30, 15, 123456),
    "early": dt.datetime(1001, 1, 1, 0, 0, 0, 1),
    "hi": 2**62,
    "lo": -(2**62),
    "max": 2**63 - 1,
    "emoji": "🧪 résumé 𝄞",
    "nul": "a\x00b",
    "blob": bytes(range(256)) * 4096,  # 1 MiB, every byte value
    "nested": {"a": [1, 2.5, {"b": None, "c": "🧪"}], "d": {"e": [True, False]}},
    "flag": True,
}


@pytest.fixture
def engine(mysql_url):
    engine = make_engine(mysql_url)
    yield engine
    engine.dispose()


def test_every_kind_of_value_comes_back_exactly(engine, mysql_url) -> None:
    store = Store(engine, Schema())
    assert store.write([Record("k", "values", EXACT, ts=T0 + 0.123456)]) == []
    again = Store(make_engine(mysql_url), Schema())  # into the table as reflected
    assert again.write([Record("k2", "values", EXACT, ts=T0)]) == []
    assert again.added == 1
    for row in typed_rows(mysql_url, "values"):
        assert {k: row[k] for k in EXACT} == EXACT
        assert all(type(row[k]) is type(v) for k, v in EXACT.items())
    assert [row["_ts"] for row in typed_rows(mysql_url, "values")] == [
        dt.datetime(2023, 11, 14, 22, 13, 20, 123456),
        dt.datetime(2023, 11, 14, 22, 13, 20),
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    x=st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda x: x != 0 or x.hex()[0] != "-"
    ),
    s=st.text(st.characters(exclude_categories=["Cs"])),
    n=st.integers(-(2**63), 2**63 - 1),
)
def test_floats_text_and_ints_of_any_value_round_trip(engine, x, s, n) -> None:
    store = Store(engine, Schema())
    assert store.write([Record("p", "prop", {"x": x, "s": s, "n": n})]) == []
    with engine.begin() as conn:
        table = sa.Table("prop", sa.MetaData(), autoload_with=conn)
        got = conn.execute(sa.select(table.c.x, table.c.s, table.c.n)).one()
        conn.execute(table.delete())
    assert tuple(got) == (x, s, n) and math.copysign(1, got[0]) == math.copysign(1, x)


def test_negative_zero_is_refused_with_a_reason_not_stored_as_zero(engine) -> None:
    store = Store(engine, Schema())
    batch = [Record("pos", "z", {"x": 0.0}), Record("neg", "z", {"x": -0.0})]
    assert store.write(batch) == [
        (1, "column 'x': -0.0: MySQL and MariaDB store negative zero as 0.0 (send 0.0)")
    ]


def test_ids_differing_in_case_or_trailing_spaces_are_different_rows(engine, mysql_url) -> None:
    store = Store(engine, Schema())
    ids = ["a", "A", "a ", "á"]
    assert store.write([Record(i, "ids", {"x": n}) for n, i in enumerate(ids)]) == []
    assert store.added == 4
    assert sorted((r["_id"], r["x"]) for r in typed_rows(mysql_url, "ids")) == sorted(
        (i, n) for n, i in enumerate(ids)
    )


def test_mariadb_json_columns_reflect_as_json(engine) -> None:
    assert Store(engine, Schema()).write([Record("k", "j", {"m": {"a": 1}, "t": "{}"})]) == []
    with engine.connect() as conn:
        table = sa.Table("j", sa.MetaData(), autoload_with=conn)
    assert isinstance(table.c.m.type, sa.JSON) and not isinstance(table.c.t.type, sa.JSON)


def test_a_row_over_max_allowed_packet_is_refused_with_that_reason(engine, mysql_url) -> None:
    with engine.connect() as conn:
        limit = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar())
    store = Store(engine, Schema())
    batch = [Record(f"r{i}", "big", {"b": b"\x00" * (limit // 8)}) for i in range(12)]
    batch.insert(5, Record("huge", "big", {"b": b"\x01" * limit}))
    ((index, reason),) = store.write(batch)
    assert index == 5
    assert reason.startswith("cannot store the row: the row is ") and reason.endswith(
        f"over the server's max_allowed_packet of {limit} bytes"
    )
    assert store.added == 12  # several statements, each under the limit
    assert sorted(r["_id"] for r in typed_rows(mysql_url, "big")) == sorted(
        f"r{i}" for i in range(12)
    )


def test_a_value_the_strict_mode_refuses_is_dead_lettered_not_truncated(engine) -> None:
    store = Store(engine, Schema())
    ((index, reason),) = store.write([Record("x" * 256, "long", {"x": 1})])
    assert index == 0 and "Data too long for column '_id'" in reason


@pytest.mark.parametrize(
    ("code", "fault"),
    [(1213, Fault.TRANSIENT), (1205, Fault.TRANSIENT), (2006, Fault.TRANSIENT),
     (2013, Fault.TRANSIENT), (1290, Fault.TRANSIENT), (1792, Fault.TRANSIENT),
     (1040, Fault.TRANSIENT), (1406, Fault.RECORDS), (1366, Fault.RECORDS),
     (1264, Fault.RECORDS), (1118, Fault.RECORDS), (1117, Fault.RECORDS),
     (1050, Fault.STALE), (1060, Fault.STALE), (1062, Fault.UNKNOWN), (9999, Fault.UNKNOWN)],
)  # fmt: skip
def test_error_codes_are_classified(code, fault) -> None:
    import pymysql

    orig = pymysql.err.OperationalError(code, "message")
    exc = sa.exc.OperationalError("SELECT 1", None, orig)
    assert classify(exc, mysql.DIALECT) is fault


KILLED = """
import os, signal, sys
from collector.db import make_engine
from collector.store import Schema, Store, ddl
from workers.record import Record

applied = ddl.apply
def apply_then_die(conn, plan, schema):
    applied(conn, plan, schema)  # MySQL has committed the change; the rows are not committed
    os.kill(os.getpid(), signal.SIGKILL)
ddl.apply = apply_then_die
store = Store(make_engine(sys.argv[1]), Schema())
store.write([Record("a", "results", {"x": 1})])  # a table first, then a column
store.write([Record("b", "results", {"x": 2, "y": "new"})])
"""


def test_killed_between_a_schema_change_and_the_commit_then_restarted(engine, mysql_url) -> None:
    for _ in range(2):  # the new table, then (after "a" is stored) the new column
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED), mysql_url])
        assert done.returncode == -9
        store = Store(make_engine(mysql_url), Schema())
        assert store.write([Record("a", "results", {"x": 1})]) == []
    store = Store(engine, Schema())
    batch = [Record("a", "results", {"x": 1}), Record("b", "results", {"x": 2, "y": "new"})]
    assert store.write(batch) == [] and store.added == 1
    rows = [(r["_id"], r["x"], r["y"]) for r in typed_rows(mysql_url, "results")]
    assert rows == [("a", 1, None), ("b", 2, "new")]


def test_status_without_pymysql_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pymysql", None)  # import pymysql raises ImportError
    result = CliRunner().invoke(main, ["status", "--db-url", "mysql+pymysql://u:pw@h/db"])
    assert (result.exit_code, result.stderr) == (
        RET_CONFIG,
        "Error: MySQL/MariaDB needs the pymysql driver: pip install 'result-collector[mysql]'\n",
    )


def test_the_status_page_epoch_ignores_the_session_time_zone(engine) -> None:
    when = dt.datetime(2024, 1, 1, 0, 0, 1)
    with engine.connect() as conn:
        conn.exec_driver_sql("SET time_zone = '+05:00'")
        seconds = conn.execute(sa.select(mysql.DIALECT.epoch(sa.literal(when, sa.DateTime))))
        assert seconds.scalar() == int(when.replace(tzinfo=dt.UTC).timestamp())


def test_negative_zero_inside_json_is_kept(engine, mysql_url) -> None:
    assert Store(engine, Schema()).write([Record("k", "zj", {"v": [-0.0, 0.0]})]) == []
    ((first, second),) = [row["v"] for row in typed_rows(mysql_url, "zj")]
    assert (math.copysign(1, first), math.copysign(1, second)) == (-1.0, 1.0)


def test_a_mariadb_url_is_the_same_database(mysql_url) -> None:
    engine = make_engine(mysql_url.replace("mysql+pymysql://", "mariadb://", 1))
    try:
        store = Store(engine, Schema())
        assert store.write([Record("k", "m", {"x": 0.1 + 0.2, "j": {"a": [1]}})]) == []
        assert store.write([Record("k2", "m", {"x": 1.5, "j": {"b": 2}})]) == []
    finally:
        engine.dispose()
    assert [(r["x"], r["j"]) for r in typed_rows(mysql_url, "m")] == [
        (0.1 + 0.2, {"a": [1]}), (1.5, {"b": 2})
    ]  # fmt: skip


def test_json_columns_are_found_without_information_schema(engine) -> None:
    """MariaDB 10.11 segfaulted on the collector's query of information_schema.CHECK_CONSTRAINTS
    (in free_tmp_table, under concurrent load): the JSON checks are read from SHOW CREATE TABLE,
    which reflection reads anyway."""
    data = {"m": {"a": 1}, "t": "{}", "odd_JSON": [1], "x": 1.5}
    assert Store(engine, Schema()).write([Record("k", "j", data)]) == []
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    with engine.connect() as conn:
        table = sa.Table("j", sa.MetaData(), autoload_with=conn)
    json_columns = {c.name for c in table.columns if isinstance(c.type, sa.JSON)}
    assert json_columns == {"m", "odd_JSON"}
    assert not [s for s in seen if "information_schema" in s.lower()]


@pytest.mark.parametrize("query", ["bogus=1", "unix_sock=/tmp/x", "ssl_bogus=1"])
def test_a_url_parameter_pymysql_does_not_take_is_one_line(query) -> None:
    url = f"mysql+pymysql://root@127.0.0.1:1/db?{query}"
    result = CliRunner().invoke(main, ["status", "--db-url", url])
    name = query.partition("=")[0]
    assert (result.exit_code, result.stderr) == (
        RET_CONFIG,
        f"Error: database url parameter {name!r} is not one PyMySQL takes\n",
    )


@pytest.mark.parametrize("query", ["charset=latin1", "sql_mode=ANSI", "connect_timeout=5"])
def test_url_parameters_pymysql_takes_still_connect_in_utf8mb4_and_strict(mysql_url, query) -> None:
    engine = make_engine(f"{mysql_url}&{query}")
    try:
        with engine.connect() as conn:
            got = conn.exec_driver_sql("SELECT @@character_set_client, @@sql_mode").one()
        assert (got[0], set(got[1].split(","))) == ("utf8mb4", set(mysql.SQL_MODE.split(",")))
        assert Store(engine, Schema()).write([Record("k", "u", {"s": "🧪"})]) == []
    finally:
        engine.dispose()
    assert [r["s"] for r in typed_rows(mysql_url, "u")] == ["🧪"]


@pytest.fixture
def limited_user(mysql_url) -> Iterator[tuple[str, str]]:
    """A user of its own (unique name) that may read and write rows in the test's database
    but not create tables; dropped after."""
    url = sa.engine.make_url(mysql_url)
    name, database = f"rc_{uuid.uuid4().hex[:12]}", url.database
    admin = sa.create_engine(mysql_url)
    with admin.begin() as conn:
        for host in ("%%", "localhost"):  # %% is % (the driver's paramstyle)
            conn.exec_driver_sql(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY 'pw'")
            conn.exec_driver_sql(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{database}`.* TO '{name}'@'{host}'"
            )
    yield name, url.set(username=name, password="pw").render_as_string(hide_password=False)
    with admin.begin() as conn:
        for host in ("%%", "localhost"):
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'{host}'")
    admin.dispose()


def test_missing_privileges_and_a_wrong_password_keep_the_records(mysql_url, limited_user) -> None:
    name, url = limited_user
    batch = [Record("a", "t", {"x": 1}), Record("b", "t", {"x": 2})]
    for each in (url.replace(":pw@", ":wrong@"), url):  # a wrong password, then no CREATE
        engine = make_engine(each)
        store = Store(engine, Schema())
        for _ in range(6):  # more than the attempts an unknown error gets before bisection
            with pytest.raises(DatabaseUnavailable, match=r"\((1045|1142), "):
                store.write(batch)
        engine.dispose()
    database = sa.engine.make_url(mysql_url).database
    admin = sa.create_engine(mysql_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"GRANT CREATE, ALTER ON `{database}`.* TO '{name}'@'%%'")
        conn.exec_driver_sql(f"GRANT CREATE, ALTER ON `{database}`.* TO '{name}'@'localhost'")
    admin.dispose()
    engine = make_engine(url)
    assert Store(engine, Schema()).write(batch) == []  # granted: stored, none dead-lettered
    engine.dispose()
    assert [(r["_id"], r["x"]) for r in typed_rows(mysql_url, "t")] == [("a", 1), ("b", 2)]


@pytest.mark.parametrize("code", [1044, 1045, 1049, 1142, 1143, 1227, 1698])
def test_access_and_missing_database_errors_are_transient(code) -> None:
    import pymysql

    exc = sa.exc.OperationalError("SELECT 1", None, pymysql.err.OperationalError(code, "m"))
    assert classify(exc, mysql.DIALECT) is Fault.TRANSIENT


NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,62}", fullmatch=True)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(table=NAMES, column=NAMES, text=st.text(st.characters(min_codepoint=0x10000), max_size=8))
def test_any_legal_name_up_to_63_characters_and_4_byte_text_are_exact(
    engine, table, column, text
) -> None:
    store = Store(engine, Schema())
    key = f"🧪{text}\x00{table}"
    ((index, reason),) = store.write([Record(key, table, {column: text, "X": 1, "x": 2})])
    assert index == 0 and reason.endswith(" (names ignore case in SQL)")  # "X" vs "x"
    assert store.write([Record(key, table, {column: text})]) == []
    with engine.begin() as conn:
        found = sa.Table(table, sa.MetaData(), autoload_with=conn)
        assert conn.execute(sa.select(found.c["_id"], found.c[column])).all() == [(key, text)]
        found.drop(conn)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    x=st.one_of(
        st.floats(),
        st.integers(-(2**63), 2**63 - 1),
        st.decimals(places=3, allow_nan=False, allow_infinity=False).map(float),
    ),
    when=st.datetimes(dt.datetime(1001, 1, 1), dt.datetime(9999, 12, 31)),
)
def test_an_existing_float_decimal_or_datetime_column_stores_exactly_or_refuses(
    engine, x, when
) -> None:
    declared = sa.MetaData()
    table = sa.Table(
        "old", declared, sa.Column("_id", sa.String(64), primary_key=True),
        sa.Column("f", sa.Float), sa.Column("d", sa.Numeric(10, 2)), sa.Column("t", sa.DateTime),
    )  # fmt: skip
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE IF NOT EXISTS "old" ("_id" VARCHAR(64) COLLATE utf8mb4_nopad_bin '
            'PRIMARY KEY, "f" FLOAT, "d" DECIMAL(10, 2), "t" DATETIME(3))'
        )
        conn.exec_driver_sql('DELETE FROM "old"')
        present = {c["name"]: c["type"] for c in sa.inspect(conn).get_columns("old")}
        mysql.DIALECT.guard_model(conn, table, present)
    store = Store(engine, Schema(declared))
    sent = {"f": x, "d": x, "t": when}
    refused = store.write([Record(k, "old", {k: v}) for k, v in sent.items()])
    with engine.connect() as conn:
        rows = conn.exec_driver_sql('SELECT "_id", "f", "d", "t" FROM "old"').mappings()
        back = {row["_id"]: row[row["_id"]] for row in rows}
    for index, key in enumerate(sent):
        if index in dict(refused):
            assert key not in back and f"column {key!r}" in dict(refused)[index]
        elif key == "d":
            assert back[key] == decimal.Decimal(repr(x) if isinstance(x, float) else x)
        else:
            assert back[key] == sent[key]


def test_a_unix_socket_url_is_the_same_database(engine, mysql_url) -> None:
    with engine.connect() as conn:
        socket = conn.exec_driver_sql("SELECT @@socket").scalar()
    url = sa.engine.make_url(mysql_url).set(host="localhost", port=None)
    url = url.update_query_dict({"unix_socket": socket})
    local = make_engine(url.render_as_string(hide_password=False))
    try:
        assert Store(local, Schema()).write([Record("k", "sock", {"s": "🧪", "x": 0.1})]) == []
    finally:
        local.dispose()
    assert [(r["s"], r["x"]) for r in typed_rows(mysql_url, "sock")] == [("🧪", 0.1)]


# --- floats MySQL cannot store, refused by the plan (lane mysoak) ------------------------------


def begun(engine: sa.Engine) -> list[int]:
    """A one-item list counting the transactions ``engine`` begins from now on."""
    count = [0]
    sa.event.listen(engine, "begin", lambda _conn: count.__setitem__(0, count[0] + 1))
    return count


@pytest.mark.parametrize("table_known", [False, True])
def test_floats_mysql_cannot_store_are_refused_by_the_plan_in_one_transaction(
    engine, table_known
) -> None:
    store = Store(engine, Schema())
    if table_known:  # the column has taken floats before: the batch would skip the plan
        assert store.write([Record("before", "z", {"x": 0.5, "n": 1})]) == []
    odd = {3: -0.0, 7: math.nan, 11: math.inf, 15: -math.inf, 19: -0.0}
    batch = [Record(f"r{i}", "z", {"x": odd.get(i, i + 0.5), "n": i}) for i in range(24)]
    transactions = begun(engine)
    no_nan = "MySQL and MariaDB have no NaN or infinity (send null)"
    assert store.write(batch) == [
        (3, "column 'x': -0.0: MySQL and MariaDB store negative zero as 0.0 (send 0.0)"),
        (7, f"column 'x': nan: {no_nan}"),
        (11, f"column 'x': inf: {no_nan}"),
        (15, f"column 'x': -inf: {no_nan}"),
        (19, "column 'x': -0.0: MySQL and MariaDB store negative zero as 0.0 (send 0.0)"),
    ]
    assert transactions == [1]  # no attempt failed: nothing was bisected
    assert store.added == 19


def test_a_bisected_batch_that_adds_a_column_alters_the_table_once(engine, mysql_url) -> None:
    store = Store(engine, Schema())
    assert store.write([Record("first", "results", {"x": 1})]) == []
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER no13 BEFORE INSERT ON results FOR EACH ROW BEGIN IF NEW.x = 13 "
            "THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'thirteen'; END IF; END"
        )
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    batch = [Record(f"r{i:02}", "results", {"x": 13 if i in (4, 9) else 100 + i, "y": "new"})
             for i in range(16)]  # fmt: skip
    assert [i for i, _reason in store.write(batch)] == [4, 9]
    assert len([s for s in statements if s.startswith("ALTER TABLE")]) == 1  # committed at once
    assert len(typed_rows(mysql_url, "results")) == 1 + 14
