"""``--models`` on PostgreSQL and SQLite: a declared column whose database column would store a
value altered (rounded, padded, cast to 4 bytes) refuses that value with a reason."""

from __future__ import annotations

import datetime as dt
import decimal

import fakeredis
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from collector.daemon import Collector
from collector.dialects import exact_numbers
from collector.errors import ConfigError
from collector.models import prepare_models
from collector.settings import Settings
from tests.helpers import dead_reasons, typed_rows
from tests.test_models import collect
from workers.emitter import Emitter

MODELS = """\
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Upper(sa.types.TypeDecorator):
    impl = sa.String(4)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else value.upper()

class Base(DeclarativeBase):
    pass

class Reading(Base):
    __tablename__ = "readings"
    _id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    _ts = mapped_column(sa.DateTime)
    price = mapped_column(sa.Numeric(10, 2))
    exact = mapped_column(sa.Numeric)
    r = mapped_column(sa.REAL)
    when = mapped_column(postgresql.TIMESTAMP(precision=3))
    small = mapped_column(sa.SmallInteger)
    i = mapped_column(sa.Integer)
    code = mapped_column(sa.String(5))
    fixed = mapped_column(sa.CHAR(5))
    up = mapped_column(Upper)
"""
AT = dt.datetime(2024, 7, 1, 10, 30, 15, 123000)
PREFIX = "cannot store the row: "


def store(url: str, queue: str, client: fakeredis.FakeRedis, source: str, sent: dict) -> int:
    declared = prepare_models(source, url)
    emitter = Emitter(queue=queue, client=client)
    for key, data in sent.items():
        emitter.emit(data, table="readings", key=key)
    settings = Settings(db_url=url, queue=queue, max_wait=0.05, consumer="test")
    return collect(settings, client, declared).counters.stored


@pytest.mark.postgres
@pytest.mark.parametrize("defaults", [False, True], ids=["copy", "insert"])
def test_values_a_postgresql_column_would_alter_are_refused_with_a_reason(
    module_file, pg_url, queue, fake_redis, defaults
) -> None:
    source = MODELS
    if defaults:  # a Python-side default: SQLAlchemy's own insert, floats bound as parameters
        source += '    note = mapped_column(sa.Text, default="n")\n'
    ok = {"price": 12.5, "exact": 0.1 + 0.2, "r": 0.5, "when": AT, "small": -32768,
          "i": 2**31 - 1, "code": "abcde", "fixed": "ab   ", "up": "abc"}  # fmt: skip
    sent = {
        "ok": ok,
        "cents": {"price": 1.234},
        "big": {"price": 123456789.5},
        "single": {"r": 0.1},
        "usec": {"when": AT.replace(microsecond=123456)},
        "small": {"small": 40000},
        "int": {"i": 2**31},
        "long": {"code": "abcdef"},
        "short": {"fixed": "ab"},
        "upper": {"up": "abcde"},
    }
    assert store(pg_url, queue, fake_redis, module_file(source), sent) == 1
    assert dead_reasons(fake_redis, queue) == [
        PREFIX + "column 'price' is NUMERIC(10, 2): 1.234 has more than 2 decimal places",
        PREFIX + "column 'price' is NUMERIC(10, 2): 123456789.5 has more than 8 digits "
        "before the point",
        PREFIX + "column 'r' is REAL (single precision): 0.1 would come back as another "
        "number (make it DOUBLE PRECISION)",
        PREFIX + "column 'when' is TIMESTAMP(3): 2024-07-01 10:30:15.123456 would lose its "
        "microseconds (make it TIMESTAMP(6))",
        PREFIX + "column 'small' is SMALLINT: 40000 is outside -32768..32767",
        PREFIX + "column 'i' is INTEGER: 2147483648 is outside -2147483648..2147483647",
        PREFIX + "column 'code' is VARCHAR(5): a string of 6 characters is too long",
        PREFIX + "column 'fixed' is CHAR(5): a string of 2 characters would be padded or "
        "trimmed to 5 (make it VARCHAR(5))",
        PREFIX + "column 'up' is VARCHAR(4): a string of 5 characters is too long",
    ]
    (row,) = typed_rows(pg_url, "readings")
    assert {k: row[k] for k in ok} == {
        **ok, "price": decimal.Decimal("12.50"), "exact": decimal.Decimal("0.30000000000000004"),
        "up": "ABC",
    }  # fmt: skip


@pytest.mark.postgres
def test_an_existing_postgresql_ts_that_rounds_is_refused_at_start(module_file, pg_url) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE readings ("_id" VARCHAR(64) PRIMARY KEY, '
                             '"_ts" TIMESTAMP(0), price NUMERIC(10, 2))')  # fmt: skip
    engine.dispose()
    source = MODELS.split("    exact =")[0]
    with pytest.raises(ConfigError) as caught:
        prepare_models(module_file(source), pg_url)
    assert str(caught.value) == (
        "model table 'readings': column _ts is TIMESTAMP(0), which would round every emit "
        'time: ALTER TABLE "readings" ALTER COLUMN "_ts" TYPE TIMESTAMP(6)'
    )


def test_values_sqlite_would_read_back_altered_are_refused(
    module_file, sqlite_url, queue, fake_redis
) -> None:
    source = MODELS.split("    r =")[0] + "    wide = mapped_column(sa.Numeric(30, 20))\n"
    sent = {
        "ok": {"price": 12.5, "exact": 0.25, "wide": 2.5},
        "cents": {"price": 1.234},
        "digits": {"exact": 0.1 + 0.2},
        "tenth": {"wide": 0.1},
    }
    assert store(sqlite_url, queue, fake_redis, module_file(source), sent) == 1
    assert dead_reasons(fake_redis, queue) == [
        PREFIX + "column 'price' is NUMERIC(10, 2): 1.234 has more than 2 decimal places",
        PREFIX + "column 'exact' is NUMERIC: 0.30000000000000004 would be read back as "
        "another number",
        PREFIX + "column 'wide' is NUMERIC(30, 20): 0.1 would be read back as another number",
    ]
    (row,) = typed_rows(sqlite_url, "readings")
    assert (row["price"], row["exact"], row["wide"]) == (
        decimal.Decimal("12.50"), decimal.Decimal("0.25"), decimal.Decimal("2.5")
    )  # fmt: skip


NUMBERS = st.one_of(
    st.integers(0, 8).flatmap(
        lambda places: st.decimals(
            min_value=-(10**10), max_value=10**10, places=places, allow_nan=False
        )
    ),
    st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.integers(-(10**14), 10**14),
)


@pytest.mark.postgres
def test_numeric_accepts_exactly_what_postgresql_stores_unaltered(pg_url) -> None:
    engine = sa.create_engine(pg_url)
    conn = engine.connect()

    @hsettings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(NUMBERS, st.integers(1, 14).flatmap(lambda p: st.tuples(st.just(p), st.integers(0, p))))
    def check(value: object, ps: tuple[int, int]) -> None:
        precision, scale = ps
        guard = exact_numbers.Digits("x", "NUMERIC", precision, scale)
        text = repr(value) if isinstance(value, float) else str(value)
        try:  # what PostgreSQL makes of the value sent as text (COPY's way)
            with conn.begin_nested():
                back = conn.exec_driver_sql(
                    f"SELECT CAST(CAST(%(v)s AS TEXT) AS NUMERIC({precision}, {scale}))",
                    {"v": text},
                ).scalar()
        except sa.exc.DataError:
            back = None  # numeric field overflow
        sent = decimal.Decimal(text)  # a NUMERIC has no -0: its sign is lost too
        kept = back is not None and back == sent and back.is_signed() == sent.is_signed()
        assert (guard.problem(value) is None) == kept, (value, precision, scale, back)

    try:
        check()
    finally:
        conn.close()
        engine.dispose()


@pytest.mark.postgres
def test_real_accepts_exactly_what_postgresql_gives_back(pg_url) -> None:
    engine = sa.create_engine(pg_url)
    conn = engine.connect()
    guard = exact_numbers.SinglePrecision("x", "REAL", "DOUBLE PRECISION", True)

    @hsettings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.floats(width=32), st.floats(), st.integers(-(2**26), 2**26)))
    @example(45399968)  # 4.539997e+07 lies on the tie with the next float32: not printed
    def check(value: float) -> None:
        try:
            with conn.begin_nested():
                printed, stored = conn.exec_driver_sql(
                    "SELECT CAST(CAST(%(v)s AS TEXT) AS REAL)::TEXT, "
                    "CAST(CAST(%(v)s AS TEXT) AS REAL)::FLOAT8",
                    {"v": repr(value)},
                ).one()
        except sa.exc.DataError:
            printed = stored = None  # out of range for a REAL
        kept = stored is not None and stored == value and float(printed) == value
        if value != value:  # NaN: stored and printed as NaN
            kept = stored != stored and printed == "NaN"
        assert (guard.problem(value) is None) == kept, (value, printed, stored)

    try:
        check()
    finally:
        conn.close()
        engine.dispose()


FLOAT_ON_INTS = """\
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class Reading(Base):
    __tablename__ = "readings"
    _id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    _ts = mapped_column(sa.DateTime)
    i = mapped_column(sa.Float)
    b = mapped_column(sa.Float)
    note = mapped_column(sa.Text)
"""


@pytest.mark.parametrize(
    ("server", "defaults"),
    [pytest.param("pg_url", False, marks=pytest.mark.postgres, id="postgresql-copy"),
     pytest.param("pg_url", True, marks=pytest.mark.postgres, id="postgresql-insert"),
     pytest.param("mysql_url", False, marks=pytest.mark.mysql, id="mariadb")],
)  # fmt: skip
def test_a_float_for_an_existing_integer_column_is_refused_not_rounded(
    request, module_file, queue, fake_redis, server, defaults
) -> None:
    """A model declaring Float where the table's column is INTEGER or BIGINT: the server would
    round 2.5 to an int, so the float is refused by the kind the database column holds."""
    url = request.getfixturevalue(server)
    mysql = server == "mysql_url"
    ts, nopad = ("DATETIME(6)", "CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin") if mysql else (
        "TIMESTAMP(6)", "")  # fmt: skip
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE readings (_id VARCHAR(64) {nopad} PRIMARY KEY, "
                             f"_ts {ts}, i INTEGER, b BIGINT, note TEXT)")  # fmt: skip
    engine.dispose()
    source = FLOAT_ON_INTS
    if defaults:  # a Python-side default: SQLAlchemy's own insert, floats bound as parameters
        source = source.replace("sa.Text)", 'sa.Text, default="n")')
    sent = {"half": {"i": 1.5}, "big": {"b": 2.5}, "whole": {"i": 7, "b": -(2**62)}}
    assert store(url, queue, fake_redis, module_file(source), sent) == 1
    assert dead_reasons(fake_redis, queue) == [
        "column 'i' holds int values, this record has float",
        "column 'b' holds int values, this record has float",
    ]
    assert [(r["_id"], r["i"], r["b"]) for r in typed_rows(url, "readings")] == [
        ("whole", 7, -(2**62))
    ]


def test_a_user_type_giving_a_fractional_float_to_an_integer_column_is_refused() -> None:
    """A TypeDecorator whose impl is Float, on an INTEGER column: its fractional result is
    refused (the server would round it); a whole float is stored as that int."""
    guard = exact_numbers.IntRange("x", "INTEGER", 32)
    assert guard.problem(2.5) == "INTEGER: 2.5 is not a whole number (the server would round it)"
    assert guard.problem(float("nan")) == (
        "INTEGER: nan is not a whole number (the server would round it)"
    )
    assert guard.problem(3.0) is None
    assert guard.problem(3e10) == "INTEGER: 30000000000.0 is outside -2147483648..2147483647"


@pytest.mark.parametrize(
    ("server", "defaults"),
    [pytest.param("pg_url", False, marks=pytest.mark.postgres, id="postgresql-copy"),
     pytest.param("pg_url", True, marks=pytest.mark.postgres, id="postgresql-insert")],
)  # fmt: skip
def test_a_negative_zero_for_a_numeric_column_is_refused_not_made_zero(
    request, module_file, queue, fake_redis, server, defaults
) -> None:
    """A NUMERIC has no negative zero: -0.0 would come back as 0, so it is refused (SQLite
    and MariaDB refuse every negative zero already)."""
    url = request.getfixturevalue(server)
    source = MODELS.split("    r =")[0]
    if defaults:
        source += '    note = mapped_column(sa.Text, default="n")\n'
    sent = {"minus": {"price": -0.0}, "plain": {"exact": -0.0}, "zero": {"price": 0.0}}
    assert store(url, queue, fake_redis, module_file(source), sent) == 1
    assert dead_reasons(fake_redis, queue) == [
        PREFIX + "column 'price' is NUMERIC(10, 2): -0.0 would be stored as 0 (a NUMERIC has "
        "no negative zero)",
        PREFIX + "column 'exact' is NUMERIC: -0.0 would be stored as 0 (a NUMERIC has no "
        "negative zero)",
    ]
    assert [(r["_id"], r["price"]) for r in typed_rows(url, "readings")] == [
        ("zero", decimal.Decimal("0.00"))
    ]


@pytest.mark.postgres
@pytest.mark.xfail(
    strict=True,
    reason="open: guards are fitted to the column types once, at start; a column narrowed "
    "while the collector runs is guarded by its old type (2.5 stored as 3)",
)
def test_a_column_narrowed_while_the_collector_runs_still_refuses_what_it_would_round(
    module_file, pg_url, queue, fake_redis
) -> None:
    declared = prepare_models(module_file(MODELS.split("    r =")[0]), pg_url)
    settings = Settings(db_url=pg_url, queue=queue, max_wait=0.05, consumer="test")
    daemon = Collector(settings, client=fake_redis, declared=declared)
    daemon.start()
    emitter = Emitter(queue=queue, client=fake_redis)
    emitter.emit({"price": 1.0}, table="readings", key="a")
    while daemon.run_once():
        pass
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE readings ALTER COLUMN price TYPE NUMERIC(10, 0)")
    engine.dispose()
    emitter.emit({"price": 2.5}, table="readings", key="b")
    while daemon.run_once():
        pass
    daemon.close()
    assert dead_reasons(fake_redis, queue) == [
        PREFIX + "column 'price' is NUMERIC(10, 0): 2.5 has more than 0 decimal places"
    ]
    assert [(r["_id"], r["price"]) for r in typed_rows(pg_url, "readings")] == [
        ("a", decimal.Decimal("1"))
    ]


TEXT_DECIMAL = """\
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Text(sa.types.TypeDecorator):
    impl = sa.Numeric(10, 2)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else f"{value}5"

class Base(DeclarativeBase):
    pass

class Reading(Base):
    __tablename__ = "readings"
    _id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    _ts = mapped_column(sa.DateTime)
    x = mapped_column(Text)
"""


@pytest.mark.parametrize(
    "server",
    [pytest.param("pg_url", marks=pytest.mark.postgres, id="postgresql"),
     pytest.param("mysql_url", marks=pytest.mark.mysql, id="mariadb"), "sqlite_url"],
)  # fmt: skip
def test_a_user_type_giving_text_to_a_numeric_column_is_checked_as_its_number(
    request, module_file, queue, fake_redis, server
) -> None:
    """The text a user's type returns is cast by the server: '2.555' would be stored 2.56."""
    url = request.getfixturevalue(server)
    sent = {"ok": {"x": 3.2}, "long": {"x": 2.55}}
    assert store(url, queue, fake_redis, module_file(TEXT_DECIMAL), sent) == 1
    kind = "NUMERIC" if server != "mysql_url" else "DECIMAL"
    assert dead_reasons(fake_redis, queue) == [
        PREFIX + f"column 'x' is {kind}(10, 2): '2.555' has more than 2 decimal places"
    ]
    assert [(r["_id"], r["x"]) for r in typed_rows(url, "readings")] == [
        ("ok", decimal.Decimal("3.25"))
    ]
