"""``--models``: loading the user's declarative module, strict tables, and the tutorial's model
end to end through ``collector run --models``."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import signal
import subprocess
import sys
import time

import fakeredis
import msgpack
import pytest
import redis
import sqlalchemy as sa

from collector.daemon import Collector
from collector.errors import RET_CONFIG, ConfigError
from collector.models import load_models, prepare_models
from collector.settings import Settings
from collector.store.timestamps import ts_datetime
from tests.helpers import REAL_REDIS_URL, collector, on_real_redis, typed_rows
from workers.emitter import Emitter
from workers.jobinfo import host_name

TUTORIAL = '''\
from sqlalchemy import create_engine
from sqlalchemy import Column, Date, Integer, Float, String
from sqlalchemy.ext.declarative import declarative_base

engine = create_engine('sqlite:///data.db', echo=True)
Base = declarative_base()

class Data(Base):
    __tablename__ = "data"

    id = Column(Integer, primary_key=True)
    input_I = Column(Float)
    input_J = Column(Float)
    result_K = Column(Float)

    #----------------------------------------------------------------------
    def __init__(self, I, J, K):
        """"""
        self.input_I = I
        self.input_J = J
        self.result_K = K

# create tables
Base.metadata.create_all(engine)
'''
POINTS = """\
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class Point(Base):
    __tablename__ = "points"
    _id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    _ts = mapped_column(sa.DateTime)
    _host = mapped_column(sa.Text)
    _job = mapped_column(sa.Text)
    I: Mapped[int] = mapped_column(sa.Integer)
    K = mapped_column(sa.Float)

class Other(DeclarativeBase):
    pass

class Log(Other):
    __tablename__ = "log"
    id: Mapped[int] = mapped_column(primary_key=True)
    line = mapped_column(sa.Text)

core = sa.MetaData()
plain = sa.Table("plain", core, sa.Column("a", sa.Integer))
"""


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.MovedIn20Warning")
def test_the_tutorial_module_loads_from_a_file_path(module_file, tmp_path) -> None:
    name = module_file(TUTORIAL)
    declared = load_models(str(tmp_path / f"{name}.py"))
    assert list(declared.tables) == ["data"]
    assert [c.name for c in declared.tables["data"].columns] == [
        "id", "input_I", "input_J", "result_K",
    ]  # fmt: skip


def test_every_metadata_of_a_module_found_by_import_path_is_merged(module_file) -> None:
    declared = load_models(module_file(POINTS))
    assert sorted(declared.tables) == ["log", "plain", "points"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("raise RuntimeError('boom')", "failed at import: RuntimeError: boom"),
        ("import no_such_module_here", "cannot import models"),
        ("import sqlalchemy as sa\nx = 1", "declare no tables"),
        (
            """\
            import sqlalchemy as sa
            a, b = sa.MetaData(), sa.MetaData()
            sa.Table("t", a, sa.Column("x", sa.Integer))
            sa.Table("t", b, sa.Column("y", sa.Integer))
            """,
            "table 't' is declared twice",
        ),
        (
            """\
            import sqlalchemy as sa
            m = sa.MetaData()
            sa.Table("t", m, sa.Column("_id", sa.Text), sa.Column("x", sa.Integer))
            """,
            "column _id must be the primary key or unique",
        ),
        (
            """\
            import sqlalchemy as sa
            m = sa.MetaData()
            sa.Table("t", m, sa.Column("_id", sa.Text, primary_key=True),
                     sa.Column("n", sa.Integer, primary_key=True))
            """,
            "column _id must be the primary key or unique",
        ),
    ],
)
def test_unusable_modules_are_config_errors(module_file, source: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_models(module_file(source))


def test_unique_id_and_missing_file(module_file) -> None:
    source = """\
        import sqlalchemy as sa
        m = sa.MetaData()
        sa.Table("t", m, sa.Column("n", sa.Integer, primary_key=True),
                 sa.Column("_id", sa.Text, unique=True))
        """
    assert list(load_models(module_file(source)).tables) == ["t"]
    with pytest.raises(ConfigError, match=r"models file not found: nowhere/x\.py"):
        load_models("nowhere/x.py")


def test_prepare_creates_missing_tables_and_refuses_an_outdated_one(
    module_file, sqlite_url: str
) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE points (_id VARCHAR(64) PRIMARY KEY, I INTEGER)")
    name = module_file(POINTS)
    with pytest.raises(ConfigError) as caught:
        prepare_models(name, sqlite_url)
    assert str(caught.value) == (
        "model table 'points' declares column(s) _ts, _host, _job, K that the database table "
        "lacks: add them to the table or rename it"
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE points")
    prepare_models(name, sqlite_url)
    assert sorted(sa.inspect(engine).get_table_names()) == ["log", "plain", "points"]
    engine.dispose()


def collect(settings: Settings, client: fakeredis.FakeRedis, declared: sa.MetaData) -> Collector:
    daemon = Collector(settings, client=client, declared=declared)
    daemon.start()
    while daemon.run_once():
        pass
    daemon.close()
    return daemon


def dead_reasons(client: redis.Redis, queue: str) -> list[str]:
    return [fields[b"reason"].decode() for _, fields in client.xrange(f"{queue}:dead")]


def test_model_tables_are_strict_and_their_metadata_columns_filled(
    module_file, settings: Settings, fake_redis: fakeredis.FakeRedis
) -> None:
    declared = prepare_models(module_file(POINTS), settings.db_url)
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    before = time.time()
    emitter.emit({"I": 1, "K": 2.5}, table="points", key="p1")
    emitter.emit({"I": 2, "K": 3}, table="points", key="p2")  # an int fits a Float column
    emitter.emit({"I": 3, "K": 1.0, "extra": 1}, table="points", key="p3")
    emitter.emit({"I": "three", "K": 1.0}, table="points", key="p4")
    emitter.emit({"I": 1, "K": 9.9}, table="points", key="p1")  # a repeat: still one row
    emitter.emit({"anything": "goes"}, table="free", key="f1")  # not declared: auto-created
    daemon = collect(settings, fake_redis, declared)
    assert daemon.counters.dead == 2
    assert dead_reasons(fake_redis, settings.queue) == [
        "table 'points' is declared by the models module and has no column 'extra'",
        "column 'I' holds int values, this record has str",
    ]
    points = typed_rows(settings.db_url, "points")
    assert [(r["_id"], r["I"], r["K"], r["_host"], r["_job"]) for r in points] == [
        ("p1", 1, 2.5, host_name(), None),
        ("p2", 2, 3.0, host_name(), None),
    ]
    assert all(before - 1 < r["_ts"].timestamp() < time.time() + 1 for r in points)
    [free] = typed_rows(settings.db_url, "free")
    assert (free["_id"], free["anything"]) == ("f1", "goes")


def test_model_table_without_id_cannot_dedupe(
    module_file, settings: Settings, fake_redis: fakeredis.FakeRedis
) -> None:
    declared = prepare_models(module_file(POINTS), settings.db_url)
    emitter = Emitter(queue=settings.queue, client=fake_redis)
    for _ in range(2):  # the same record again in a later batch, as after a redelivery
        emitter.emit({"line": "hello"}, table="log", key="same")
        collect(settings, fake_redis, declared)
    assert [r["line"] for r in typed_rows(settings.db_url, "log", order="id")] == ["hello", "hello"]


@pytest.mark.redis
@pytest.mark.slow
def test_tutorial_model_end_to_end_through_collector_run(
    real_redis: redis.Redis, settings: Settings, tmp_path
) -> None:
    (tmp_path / "define_data.py").write_text(TUTORIAL)
    settings = on_real_redis(settings)
    common = ["--redis-url", REAL_REDIS_URL, "--queue", settings.queue]
    with open(tmp_path / "run.log", "w") as log:
        run = subprocess.Popen(
            [sys.executable, "-m", "collector", "run", *common, "--db-url", settings.db_url,
             "--models", "define_data", "--max-wait", "0.1"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        emitter = Emitter(settings.redis_url, settings.queue)
        points = [(0.5, 1.0, 0.25), (1.0, 2.0, 3.5), (1.5, 4, 7)]
        for i, j, k in points:
            emitter.emit({"input_I": i, "input_J": j, "result_K": k}, table="data")
        emitter.emit({"input_I": 1.0, "bogus": 2}, table="data")
        emitter.emit({"input_I": "one"}, table="data")
        emitter.emit({"note": "free-form"}, table="notes")
        emitter.close()
        for table, count in (("data", 3), ("notes", 1)):
            done = collector("wait", "--db-url", settings.db_url, "--table", table,
                             "--count", str(count), "--timeout", "60")  # fmt: skip
            assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 30
        while real_redis.xlen(f"{settings.queue}:dead") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        run.send_signal(signal.SIGTERM)
        code = run.wait(timeout=30)
    assert code == 0, (tmp_path / "run.log").read_text()
    stored = typed_rows(settings.db_url, "data", order="id")
    assert [(r["id"], r["input_I"], r["input_J"], r["result_K"]) for r in stored] == [
        (1, 0.5, 1.0, 0.25), (2, 1.0, 2.0, 3.5), (3, 1.5, 4.0, 7.0),
    ]  # fmt: skip
    assert dead_reasons(real_redis, settings.queue) == [
        "table 'data' is declared by the models module and has no column 'bogus'",
        "column 'input_I' holds float values, this record has str",
    ]
    assert [r["note"] for r in typed_rows(settings.db_url, "notes")] == ["free-form"]
    assert os.path.exists(tmp_path / "data.db")  # the module's own side effect, left alone


def test_bad_models_flag_is_one_line(tmp_path) -> None:
    done = collector("run", "--models", "nowhere.py", "--db-url", f"sqlite:///{tmp_path}/r.db")
    assert done.returncode == RET_CONFIG
    assert done.stderr == "Error: models file not found: nowhere.py\n"


EXACTING = """\
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class Reading(Base):
    __tablename__ = "readings"
    _id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    _ts = mapped_column(sa.DateTime)
    when = mapped_column(sa.DateTime)
    x = mapped_column(sa.Float)
    price = mapped_column(sa.Numeric(10, 2))
    code = mapped_column(sa.String(5))
"""
AT = dt.datetime(2024, 7, 1, 10, 30, 15, 123456)


@pytest.mark.mysql
def test_declared_datetime_and_float_are_created_exact_on_mysql(
    module_file, mysql_url, queue, fake_redis
) -> None:
    declared = prepare_models(module_file(EXACTING), mysql_url)
    with sa.create_engine(mysql_url).connect() as conn:
        created = conn.exec_driver_sql("SHOW CREATE TABLE readings").one()[1]
    assert '"_ts" datetime(6)' in created and '"when" datetime(6)' in created
    assert '"x" double' in created
    emitter = Emitter(queue=queue, client=fake_redis)
    emitter.emit({"when": AT, "x": 0.1 + 0.2, "price": 12.5, "code": "ab  "}, table="readings",
                 key="r1")  # fmt: skip
    ((_mid, fields),) = fake_redis.xrange(queue)
    emitted = ts_datetime(msgpack.unpackb(fields[b"m"])["ts"])
    settings = Settings(db_url=mysql_url, queue=queue, max_wait=0.05, consumer="test")
    assert collect(settings, fake_redis, declared).counters.stored == 1
    (row,) = typed_rows(mysql_url, "readings")
    assert (row["_ts"], row["when"], row["x"], row["price"], row["code"]) == (
        emitted, AT, 0.1 + 0.2, decimal.Decimal("12.50"), "ab  "
    )  # fmt: skip


@pytest.mark.mysql
def test_values_an_existing_mysql_column_would_alter_are_refused_with_a_reason(
    module_file, mysql_url, queue, fake_redis
) -> None:
    engine = sa.create_engine(mysql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE readings ("_id" VARCHAR(64) COLLATE utf8mb4_nopad_bin PRIMARY KEY, '
            '"_ts" DATETIME(6), "when" DATETIME, "x" FLOAT, "price" DECIMAL(10, 2), '
            '"code" VARCHAR(5))'
        )
    engine.dispose()
    declared = prepare_models(module_file(EXACTING), mysql_url)
    emitter = Emitter(queue=queue, client=fake_redis)
    sent = {
        "ok": {"when": AT.replace(microsecond=0), "x": 0.5, "price": 12.5, "code": "abcde"},
        "usec": {"when": AT},
        "single": {"x": 0.1},
        "cents": {"price": 1.234},
        "big": {"price": 123456789.5},
        "long": {"code": "abcdef"},
    }
    for key, data in sent.items():
        emitter.emit(data, table="readings", key=key)
    settings = Settings(db_url=mysql_url, queue=queue, max_wait=0.05, consumer="test")
    assert collect(settings, fake_redis, declared).counters.stored == 1
    prefix = "cannot store the row: "
    assert dead_reasons(fake_redis, queue) == [
        prefix + "column 'when' is DATETIME(0): 2024-07-01 10:30:15.123456 would lose its "
        "microseconds (make it DATETIME(6))",
        prefix + "column 'x' is FLOAT (single precision): 0.1 would come back as another "
        "number (make it DOUBLE)",
        prefix + "column 'price' is DECIMAL(10, 2): 1.234 has more than 2 decimal places",
        prefix + "column 'price' is DECIMAL(10, 2): 123456789.5 has more than 8 digits "
        "before the point",
        "database refused the row: (1406, \"Data too long for column 'code' at row 1\")",
    ]
    (row,) = typed_rows(mysql_url, "readings")
    assert (row["_id"], row["when"], row["x"], row["price"], row["code"]) == (
        "ok", AT.replace(microsecond=0), 0.5, decimal.Decimal("12.50"), "abcde"
    )  # fmt: skip


@pytest.mark.mysql
def test_an_existing_mysql_ts_without_microseconds_is_refused_at_start(
    module_file, mysql_url
) -> None:
    engine = sa.create_engine(mysql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE readings ("_id" VARCHAR(64) PRIMARY KEY, "_ts" DATETIME, '
            '"when" DATETIME(6), "x" DOUBLE, "price" DECIMAL(10, 2), "code" VARCHAR(5))'
        )
    engine.dispose()
    with pytest.raises(ConfigError) as caught:
        prepare_models(module_file(EXACTING), mysql_url)
    assert str(caught.value) == (
        "model table 'readings': column _ts is DATETIME(0), which would round every emit time "
        "to the second: ALTER TABLE `readings` MODIFY `_ts` DATETIME(6)"
    )


@pytest.mark.mysql
def test_a_declared_string_without_length_is_created_as_longtext_on_mysql(
    module_file, mysql_url, queue, fake_redis
) -> None:
    source = EXACTING.replace("sa.String(5)", "sa.String")
    declared = prepare_models(module_file(source), mysql_url)
    Emitter(queue=queue, client=fake_redis).emit({"code": "🧪" * 70_000}, table="readings")
    settings = Settings(db_url=mysql_url, queue=queue, max_wait=0.05, consumer="test")
    assert collect(settings, fake_redis, declared).counters.stored == 1
    assert [r["code"] for r in typed_rows(mysql_url, "readings")] == ["🧪" * 70_000]
