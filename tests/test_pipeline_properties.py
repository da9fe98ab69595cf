"""A seeded property test of the whole pipeline (emit -> Redis -> collector -> database): random
records in random batches over several tables, names from a pool with SQL keywords, case
variants and names a database refuses, random value types (numpy and pandas included), repeated
keys. Every record ends stored with exactly its values (or as the loser of the conflict rule
under a repeated key), or dead-lettered with a reason; the queue drains; the collector stays up."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from collector.daemon import Collector
from collector.db import make_engine
from collector.pipeline import PipelinedCollector
from tests.helpers import URL_PARAMS, drain
from workers import Emitter
from workers.arrays import Array
from workers.record import Record, wire_data

TABLES = ["results", "order", "user", "Results", "sqlite_t", "window"]
PLAIN_KEYS = {  # key -> a value maker of one kind
    "index": lambda r: r.randint(-(2**40), 2**40),
    "end": lambda r: r.random() * 100,
    "nothing": lambda r: r.choice(["", "a", "ü ñ", "x" * 50]),
    "returning": lambda r: r.random() < 0.5,
    "blob": lambda r: r.randbytes(r.randint(0, 8)),
    "at": lambda r: (
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=r.randint(0, 10**7))
    ),
    "tags": lambda r: r.choice([None, [r.randint(0, 9) for _ in range(r.randint(0, 3))]]),
    "meta": lambda r: r.choice([None, {"a": r.randint(0, 3), "b": [1, "two"]}]),
    "np_int": lambda r: np.int64(r.randint(-1000, 1000)),
    "np_float": lambda r: np.float64(r.random()),
    "np_array": lambda r: np.arange(r.randint(0, 4)),
    "pd_stamp": lambda r: pd.Timestamp(2024, 5, 6, 7, r.randint(0, 59), tz="Europe/Paris"),
}
TROUBLE_KEYS = {  # refused, or clashing, some of the time
    "Index": lambda r: 1,  # clashes with "index" once both meet one table
    "xmin": lambda r: 1,  # a PostgreSQL system column
    "mixed": lambda r: r.choice([1, 2.5, "text"]),  # int widens to float; str conflicts
}


JSON_KEYS = ("tags", "meta")  # None (or missing) must be SQL NULL, never the JSON text 'null'


def random_records(rng: random.Random, n: int) -> list[tuple[str, dict, str | None]]:
    records = []
    for _ in range(n):
        keys = rng.sample(sorted(PLAIN_KEYS), rng.randint(1, 5))
        if rng.random() < 0.25:
            keys.append(rng.choice(sorted(TROUBLE_KEYS)))
        data = {k: {**PLAIN_KEYS, **TROUBLE_KEYS}[k](rng) for k in keys}
        if rng.random() < 0.3:  # int at first; later a float with a new column: add and widen
            data["grow"] = rng.randint(0, 9) if rng.random() < 0.5 else rng.random()
            if isinstance(data["grow"], float):
                data[f"fresh_{rng.randint(0, 9)}"] = rng.choice(["new", 7, 0.5])
        if rng.random() < 0.2:
            data["_error"] = "boom"
        key = f"repeat-{rng.randint(0, 9)}" if rng.random() < 0.3 else None
        records.append((rng.choice(TABLES), data, key))
    return records


def plain(value: object) -> object:
    """A value as the database gives it back (naive UTC datetimes, JSON as lists and dicts)."""
    if isinstance(value, np.ndarray):
        return Array(wire_data({"k": value}, "t")["k"].data)  # stored as its wire payload
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.datetime):
        return pd.Timestamp(value).tz_convert("UTC").tz_localize(None).to_pydatetime()
    return value


def winners(sent: list[Record], dead: set[int]) -> dict[tuple[str, str], Record]:
    """The conflict rule over the records not dead-lettered (by ``seq``), in emit order: the
    first row of an id stays, except that the first success after a stored failure replaces
    it."""
    kept: dict[tuple[str, str], Record] = {}
    for rec in sent:
        if rec.data["seq"] in dead:
            continue
        key = (rec.table, rec.id)
        old = kept.get(key)
        if old is None or ("_error" in old.data and "_error" not in rec.data):
            kept[key] = rec
    return kept


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("db", URL_PARAMS)
@pytest.mark.parametrize("wire", ["v1", "v1 and v2"])
@pytest.mark.parametrize("pipeline", [False, True])
def test_every_record_is_stored_exactly_or_dead_lettered(
    request, db, seed, wire, pipeline, settings, fake_redis
):
    """``v1``: one entry per record (``emit``); ``v1 and v2``: each round at random also from a
    buffered emitter, whose records travel in batch entries (version 2), keys included. In one
    process, or pipelined (the writer process decodes and stores)."""
    rng = random.Random(seed)
    db_url = request.getfixturevalue(db)
    alone = Emitter(queue=settings.queue, client=fake_redis)
    buffered = Emitter(queue=settings.queue, client=fake_redis, buffer=10_000, flush_interval=60)
    kind = PipelinedCollector if pipeline else Collector
    collector = kind(replace(settings, db_url=db_url, pipeline=pipeline), client=fake_redis)
    collector.start()
    sent: list[Record] = []
    for _round in range(6):
        batch = random_records(rng, rng.randint(1, 60))
        emitter = buffered if wire != "v1" and rng.random() < 0.5 else alone
        for table, data, key in batch:
            data["seq"] = len(sent)  # tells records of one key apart in the dead letters
            rid = emitter.emit(data, table=table, key=key)
            sent.append(Record(rid, table, {k: plain(v) for k, v in data.items()}))
        emitter.flush()
        collector.settings = replace(collector.settings, batch_size=rng.randint(1, 40))
        drain(collector, rounds=1000)
    letters = fake_redis.xrange(f"{settings.queue}:dead")
    reasons = [f[b"reason"].decode() for _id, f in letters]
    assert all(reasons) and not any("unavailable" in r or "unexpected" in r for r in reasons)
    dead = {Record.decode(f[b"m"]).data["seq"] for _id, f in letters}
    assert len(dead) == len(letters)
    expected = winners(sent, dead)
    engine = make_engine(db_url)
    stored: dict[tuple[str, str], dict] = {}
    sql_nulls: dict[tuple[str, str], set[str]] = {}  # (table, JSON key) -> ids with SQL NULL
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            for row in conn.execute(sa.select(table)).mappings():
                stored[(name, row["_id"])] = dict(row)
            for key in JSON_KEYS:
                if key in table.c:
                    query = sa.select(table.c._id).where(table.c[key].is_(sa.null()))
                    sql_nulls[name, key] = set(conn.scalars(query))
    engine.dispose()
    for (name, key), ids in sql_nulls.items():
        assert ids == {
            rid for (t, rid), rec in expected.items() if t == name and rec.data.get(key) is None
        }, (name, key)
    assert set(stored) == set(expected)
    for key, rec in expected.items():
        row = stored[key]
        data_columns = {c for c in row if not c.startswith("_")}
        assert {c: row[c] for c in data_columns if row[c] is not None} == {
            k: v for k, v in rec.data.items() if k != "_error" and v is not None
        }, key
        assert row["_error"] == rec.data.get("_error")
    assert fake_redis.xlen(settings.queue) == 0
    assert fake_redis.xpending(settings.queue, "collector")["pending"] == 0
    alone.emit({"index": 1}, key="still-up")
    assert drain(collector) == 1
    collector.close()
    buffered.close()
