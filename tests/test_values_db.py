"""Values end to end through the public API (Emitter -> stream -> Collector.run_once -> rows) on
SQLite, PostgreSQL and MySQL/MariaDB: a datetime of any class is stored as the same instant; NaN and
infinities are stored where the database has them and dead-lettered, with a reason, where
standard JSON has no form for them."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from collector.daemon import Collector
from collector.settings import Settings
from tests.helpers import drain
from workers import Emitter, Record

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")  # +02:00 in July
EST = dt.timezone(dt.timedelta(hours=-5), "EST")
INSTANT = dt.datetime(2024, 7, 1, 10, 30, 15, 123456)  # what every value below names, naive UTC
EARLY = dt.datetime(1969, 12, 31, 23, 59, 59, 500000)  # before the epoch, with microseconds
JSON_REASON = (
    "cannot store the row: NaN or infinity inside a list or dict: JSON has no such numbers "
    "(send null, or the value as text)"
)


class Stamp(dt.datetime):
    """A user's own datetime subclass."""


SAME_INSTANT = {
    "plain_aware": dt.datetime(2024, 7, 1, 12, 30, 15, 123456, tzinfo=BERLIN),
    "plain_naive": INSTANT,
    "sub_aware": Stamp(2024, 7, 1, 12, 30, 15, 123456, tzinfo=BERLIN),
    "sub_offset": Stamp(2024, 7, 1, 5, 30, 15, 123456, tzinfo=EST),
    "sub_naive": Stamp(2024, 7, 1, 10, 30, 15, 123456),
    "pd_aware": pd.Timestamp("2024-07-01 12:30:15.123456", tz="Europe/Berlin"),
    "pd_naive": pd.Timestamp("2024-07-01 10:30:15.123456"),
    "pd_nanos": pd.Timestamp("2024-07-01 06:30:15.123456789", tz="America/New_York").tz_convert(
        "Asia/Tokyo"
    ),  # nanoseconds are cut to microseconds
    "np_nanos": np.datetime64("2024-07-01T10:30:15.123456789"),  # numpy: naive = UTC
}


@pytest.fixture
def emitter(fake_redis, queue: str) -> Emitter:
    return Emitter(queue=queue, client=fake_redis)


@pytest.fixture
def collector(db_url: str, queue: str, fake_redis) -> Iterator[Collector]:
    """The collector with its own engine (the one ``collector run`` builds) on ``db_url``."""
    settings = Settings(db_url=db_url, queue=queue, max_wait=0.05, consumer="test")
    collector = Collector(settings, client=fake_redis)
    collector.start()
    yield collector
    collector.close()


def stored(db_url: str, table: str) -> dict[str, dict[str, Any]]:
    """_id -> the data columns of ``table``, read back with the reflected column types."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                return {}
            reflected = sa.Table(table, sa.MetaData(), autoload_with=conn)
            result = conn.execute(sa.select(reflected)).mappings()
            return {
                row["_id"]: {k: v for k, v in row.items() if not k.startswith("_")}
                for row in result
            }
    finally:
        engine.dispose()


def dead_letters(client, queue: str) -> dict[str, str]:
    """Record id -> reason, for every dead letter of ``queue``."""
    return {
        Record.decode(fields[b"m"]).id: fields[b"reason"].decode()
        for _, fields in client.xrange(f"{queue}:dead")
    }


def test_a_datetime_of_any_class_is_stored_as_the_same_instant(
    emitter: Emitter, collector: Collector, db_url: str, fake_redis, queue: str
) -> None:
    emitter.emit(SAME_INSTANT, table="times", key="same")
    early = Stamp(1970, 1, 1, 0, 59, 59, 500000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    emitter.emit(
        {"plain_aware": early, "pd_aware": pd.Timestamp(early)}, table="times", key="early"
    )
    emitter.emit({"pd_aware": pd.NaT, "np_nanos": np.datetime64("NaT")}, table="times", key="nat")
    assert drain(collector) == 3
    rows = stored(db_url, "times")
    assert rows["same"] == {name: INSTANT for name in SAME_INSTANT}
    assert rows["early"] == {name: (EARLY if name in ("plain_aware", "pd_aware") else None)
                             for name in SAME_INSTANT}  # fmt: skip
    assert rows["nat"] == {name: None for name in SAME_INSTANT}  # NaT: a missing time is NULL
    assert dead_letters(fake_redis, queue) == {}


def test_nan_and_infinities_in_a_float_column(
    emitter: Emitter, collector: Collector, db_url: str, fake_redis, queue: str
) -> None:
    for key, value in {"one": 1.5, "nan": math.nan, "inf": math.inf, "ninf": -math.inf}.items():
        emitter.emit({"x": value}, table="floats", key=key)
    assert drain(collector) == 4
    x = {key: row["x"] for key, row in stored(db_url, "floats").items()}
    if db_url.startswith("mysql"):  # no NaN, no infinities: refused, never stored altered
        assert x == {"one": 1.5}
        reason = "column 'x': {}: MySQL and MariaDB have no NaN or infinity (send null)"
        assert dead_letters(fake_redis, queue) == {
            "nan": reason.format("nan"), "inf": reason.format("inf"), "ninf": reason.format("-inf")
        }  # fmt: skip
        return
    assert (x["one"], x["inf"], x["ninf"]) == (1.5, math.inf, -math.inf)
    if db_url.startswith("sqlite"):
        assert x["nan"] is None  # SQLite has no NaN: it stores NULL
    else:
        assert math.isnan(x["nan"])  # PostgreSQL's float8 keeps NaN
    assert dead_letters(fake_redis, queue) == {}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_nan_and_infinities_inside_lists_and_dicts_are_dead_lettered_with_a_reason(
    emitter: Emitter, collector: Collector, db_url: str, fake_redis, queue: str, value: float
) -> None:
    emitter.emit({"v": [1.0, 2.0], "m": {"a": 1.0}}, table="nested", key="good")
    emitter.emit({"v": [1.0, value]}, table="nested", key="in-list")
    emitter.emit({"m": {"a": value}}, table="nested", key="in-dict")
    emitter.emit({"v": [np.array([1.0, value])]}, table="nested", key="in-array")
    assert drain(collector) == 4
    assert stored(db_url, "nested") == {"good": {"v": [1.0, 2.0], "m": {"a": 1.0}}}
    assert dead_letters(fake_redis, queue) == {
        "in-list": JSON_REASON,
        "in-dict": JSON_REASON,
        "in-array": JSON_REASON,
    }
