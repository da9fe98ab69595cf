"""The collector's batch loop on fakeredis and SQLite: storing, dead letters, idempotence, stop."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace

import msgpack
import pytest
import sqlalchemy as sa
from redis.exceptions import SlotNotCoveredError

from collector.daemon import Collector
from collector.errors import DatabaseUnavailable
from collector.reader import StreamReader
from collector.settings import Settings
from collector.stream import Stream
from tests.helpers import dead_reasons, drain, rows
from workers import Emitter
from workers.checks import Limits
from workers.record import Record


@pytest.fixture
def emitter(fake_redis, queue) -> Emitter:
    return Emitter(queue=queue, client=fake_redis)


@pytest.fixture
def collector(settings: Settings, fake_redis) -> Collector:
    c = Collector(settings, client=fake_redis)
    c.start()
    yield c
    c.close()


def test_records_become_rows_with_metadata(emitter, collector, settings, fake_redis) -> None:
    when = dt.datetime(2024, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    rid = emitter.emit({"I": 1, "J": 2.5, "name": "a", "at": when, "v": [1, 2]}, table="data")
    assert drain(collector) == 1
    (row,) = rows(settings.db_url, "data")
    assert row["_id"] == rid
    assert (row["I"], row["J"], row["name"], row["v"]) == (1, 2.5, "a", "[1, 2]")
    assert row["at"] == "2024-03-04 05:06:07.000000"
    assert row["_host"] and row["_pid"] > 0 and row["_error"] is None
    assert collector.reader.backlog() == 0
    assert fake_redis.xpending(settings.queue, "collector")["pending"] == 0


def test_same_key_three_times_is_one_row(emitter, collector, settings) -> None:
    for value in (1, 2, 3):
        emitter.emit({"x": value}, key="point-7")
    drain(collector)
    emitter.emit({"x": 4}, key="point-7")  # and once more in a later batch
    drain(collector)
    assert [(r["_id"], r["x"]) for r in rows(settings.db_url, "results")] == [("point-7", 1)]


def test_poison_records_are_dead_lettered_and_neighbours_stored(
    emitter, collector, settings, fake_redis
) -> None:
    queue = settings.queue
    emitter.emit({"x": 1}, key="good-1")
    fake_redis.xadd(queue, {"m": b"\xc1 garbage"})
    fake_redis.xadd(queue, {"m": b"\x93\x01\x02\x03"})  # a msgpack array
    fake_redis.xadd(queue, {"other": b"field"})
    emitter.emit({"x": 1}, table="x; DROP TABLE data")
    emitter.emit({"a b": 1})
    emitter.emit({"x": "text"})  # type conflict with x (int)
    emitter.emit({"x": 2, "select": 1}, key="keyword")  # a SQL keyword is an ordinary name
    emitter.emit({"s": "y" * 2048})
    fake_redis.xadd(queue, {"m": Record("nan", "results", {"x": 3}, ts=float("nan")).encode()})
    emitter.emit({"x": 2}, key="good-2")
    collector.settings = replace(settings, limits=Limits(max_record_bytes=1024))
    drain(collector)
    assert [r["_id"] for r in rows(settings.db_url, "results")] == ["good-1", "good-2", "keyword"]
    reasons = dead_reasons(fake_redis, queue)
    assert len(reasons) == 8
    for expected in [
        "not valid msgpack", "not a map", "no field 'm'", "bad table name 'x; DROP TABLE data'",
        "bad column name 'a b'", "column 'x' holds int values, this record has str",
        "exceeds the limit of 1024",
        "ts must be seconds since 1970",
    ]:  # fmt: skip
        assert sum(expected in r for r in reasons) == 1, (expected, reasons)
    assert collector.reader.backlog() == 0
    entry = fake_redis.xrange(f"{queue}:dead")[0][1]
    assert entry[b"m"] == b"\xc1 garbage" and float(entry[b"ts"]) > 0


def test_int_column_widens_to_float_and_keeps_rows(emitter, collector, settings) -> None:
    emitter.emit({"v": 1}, key="a")
    drain(collector)
    emitter.emit({"v": 2.5}, key="b")
    emitter.emit({"v": 3}, key="c")
    drain(collector)
    got = {r["_id"]: r["v"] for r in rows(settings.db_url, "results")}
    assert got == {"a": 1.0, "b": 2.5, "c": 3.0}
    assert all(type(v) is float for v in got.values())
    table = sa.Table("results", sa.MetaData(), autoload_with=sa.create_engine(settings.db_url))
    assert isinstance(table.c.v.type, sa.Float)


def test_new_columns_are_added_and_old_rows_get_null(emitter, collector, settings) -> None:
    emitter.emit({"a": 1}, key="1")
    drain(collector)
    emitter.emit({"a": 2, "b": "new", "c": None}, key="2")
    drain(collector)
    got = [(r["_id"], r["a"], r["b"]) for r in rows(settings.db_url, "results")]
    assert got == [("1", 1, None), ("2", 2, "new")]
    assert "c" not in rows(settings.db_url, "results")[0]


def test_case_clash_between_columns_is_dead_lettered(
    emitter, collector, settings, fake_redis
) -> None:
    emitter.emit({"K": 1}, key="1")
    emitter.emit({"k": 2}, key="2")
    drain(collector)
    assert [r["_id"] for r in rows(settings.db_url, "results")] == ["1"]
    assert "clashes with column 'K'" in dead_reasons(fake_redis, settings.queue)[0]


def test_database_down_keeps_the_batch_unacknowledged(emitter, settings, fake_redis) -> None:
    broken = replace(settings, db_url="sqlite:////nonexistent/dir/x.db")
    collector = Collector(broken, client=fake_redis)
    Stream(fake_redis, settings.queue, settings.consumer).ensure_group()
    emitter.emit({"x": 1}, key="k")
    with pytest.raises(DatabaseUnavailable):
        collector.run_once()
    assert fake_redis.xpending(settings.queue, "collector")["pending"] == 1
    assert fake_redis.xlen(settings.queue) == 1
    # the retry takes the same batch again instead of reading more
    emitter.emit({"x": 2}, key="later")
    with pytest.raises(DatabaseUnavailable):
        collector.run_once()
    assert fake_redis.xpending(settings.queue, "collector")["pending"] == 1


def test_restart_rereads_own_pending_records_first(emitter, settings, fake_redis) -> None:
    first = Stream(fake_redis, settings.queue, settings.consumer)
    first.ensure_group()
    emitter.emit({"x": 1}, key="k1")
    first.read_new(10, 0)  # delivered, then the collector "dies" before storing
    emitter.emit({"x": 2}, key="k2")
    second = Collector(settings, client=fake_redis)
    second.start()
    assert second.run_once() == 1  # the pending record, alone
    assert [r["_id"] for r in rows(settings.db_url, "results")] == ["k1"]
    drain(second)
    assert [r["_id"] for r in rows(settings.db_url, "results")] == ["k1", "k2"]
    second.close()


def test_stale_records_of_another_consumer_are_claimed(emitter, settings, fake_redis) -> None:
    dead_peer = Stream(fake_redis, settings.queue, "peer")
    dead_peer.ensure_group()
    emitter.emit({"x": 1}, key="k1")
    dead_peer.read_new(10, 0)
    clock = [1000.0]
    live = Collector(
        replace(settings, claim_idle=0.0), client=fake_redis,
        clock=lambda: clock[0],
    )  # fmt: skip
    live.start()
    drain(live)
    assert [r["_id"] for r in rows(settings.db_url, "results")] == ["k1"]
    assert fake_redis.xpending(settings.queue, "collector")["pending"] == 0
    live.close()


def test_run_stops_when_asked_and_releases_everything(emitter, settings, fake_redis) -> None:
    for i in range(50):
        emitter.emit({"i": i})
    collector = Collector(settings, client=fake_redis)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,))
    thread.start()
    for _ in range(200):
        if collector.counters.records == 50:
            break
        threading.Event().wait(0.02)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert len(rows(settings.db_url, "results")) == 50
    again = Collector(settings, client=fake_redis)
    again.start()
    again.close()  # the lock was released: a new collector may start


def test_a_row_the_database_refuses_is_isolated(emitter, collector, settings, fake_redis) -> None:
    engine = sa.create_engine(settings.db_url)
    emitter.emit({"x": 1}, key="a")
    drain(collector)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER no_13 BEFORE INSERT ON results WHEN NEW.x = 13 "
            "BEGIN SELECT RAISE(ABORT, 'thirteen is unlucky'); END"
        )
    engine.dispose()
    for x in range(10, 20):
        emitter.emit({"x": x}, key=f"k{x}")
    drain(collector)
    assert sorted(r["x"] for r in rows(settings.db_url, "results")) == [
        1, 10, 11, 12, 14, 15, 16, 17, 18, 19,
    ]  # fmt: skip
    assert dead_reasons(fake_redis, settings.queue) == [
        "database refused the row: thirteen is unlucky"
    ]


def test_redis_outage_is_waited_out(emitter, settings, fake_redis, caplog) -> None:
    server = fake_redis.connection_pool.connection_kwargs["server"]
    for i in range(20):
        emitter.emit({"i": i}, key=f"k{i:02}")
    server.connected = False
    collector = Collector(settings, client=fake_redis)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,))
    thread.start()
    try:
        wait = threading.Event().wait
        for _ in range(100):
            if "redis unavailable" in caplog.text:
                break
            wait(0.02)
        assert "redis unavailable" in caplog.text
        server.connected = True
        for _ in range(200):
            if collector.counters.records == 20:
                break
            wait(0.02)
    finally:
        stop.set()
        thread.join(5)
    assert [r["_id"] for r in rows(settings.db_url, "results")] == [f"k{i:02}" for i in range(20)]


def test_a_cluster_clients_own_errors_are_waited_out(emitter, settings, fake_redis, caplog):
    """redis-py's cluster client raises some errors outside RedisError (a slot no known node
    serves): an outage like any other, not the end of the collector."""
    for i in range(5):
        emitter.emit({"i": i}, key=f"k{i}")
    reader = StreamReader(settings, client=fake_redis)
    reader.start()
    assert reader.stream is not None
    real_read, failures = reader.stream.read_new, [SlotNotCoveredError("Slot 1 not covered")]

    def read_new(count: int, block_seconds: float):
        if failures:
            raise failures.pop()
        return real_read(count, block_seconds)

    reader.stream.read_new = read_new  # type: ignore[method-assign]
    collector = Collector(settings, reader=reader)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,))
    thread.start()
    try:
        for _ in range(200):
            if collector.counters.records == 5:
                break
            threading.Event().wait(0.02)
    finally:
        stop.set()
        thread.join(5)
    assert "redis unavailable: Slot 1 not covered" in caplog.text
    assert [r["_id"] for r in rows(settings.db_url, "results")] == [f"k{i}" for i in range(5)]


def test_rate_line_every_ten_seconds_while_busy(emitter, settings, fake_redis, caplog) -> None:
    clock = [0.0]
    collector = Collector(settings, client=fake_redis, clock=lambda: clock[0])
    for i in range(30):
        emitter.emit({"i": i})
    caplog.set_level("INFO", logger="collector")
    drain(collector)
    clock[0] = 9.0
    collector.log_progress()
    assert "records/s" not in caplog.text
    clock[0] = 10.0
    collector.log_progress()
    assert "3 records/s, 1 batches, 0 dead letters, lag 0" in caplog.text
    caplog.clear()
    clock[0] = 25.0
    collector.log_progress()  # idle: nothing new, no line
    assert "records/s" not in caplog.text


def test_a_value_no_encoder_takes_is_dead_lettered_not_fatal(
    emitter, collector, settings, fake_redis
):
    emitter.emit({"v": {"ok": 1}}, key="a")
    emitter.emit({"v": {b"raw-key": 1}}, key="b")  # JSON has no bytes keys
    emitter.emit({"v": [2]}, key="c")
    drain(collector)
    assert [r["_id"] for r in rows(settings.db_url, "results")] == ["a", "c"]
    (reason,) = dead_reasons(fake_redis, settings.queue)
    assert reason.startswith("cannot store the row: keys must be str")


def _entry_source(client, queue: str) -> tuple:
    """(ts, host, pid, job, elapsed, maxrss) lists and values of the one batch entry queued."""
    ((_mid, fields),) = client.xrange(queue)
    wire = msgpack.unpackb(fields[b"m"])
    src = wire["src"]
    return wire["ts"], src["host"], src["pid"], src["job"], wire["el"], wire["rss"]


def test_a_batch_entry_ends_as_its_records_emitted_alone(
    emitter, collector, settings, fake_redis
) -> None:
    emitter.emit({"x": 1}, key="a")
    drain(collector)
    engine = sa.create_engine(settings.db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER no_13 BEFORE INSERT ON results WHEN NEW.x = 13 "
            "BEGIN SELECT RAISE(ABORT, 'thirteen is unlucky'); END"
        )
    engine.dispose()
    data = [{"x": 10}, {"a b": 1}, {"x": "text"}, {"x": 13}, {"x": 14}]
    ids = emitter.emit_many(data)
    ts, host, pid, job, elapsed, maxrss = _entry_source(fake_redis, settings.queue)
    assert drain(collector) == 1  # one stream entry
    stored = rows(settings.db_url, "results")
    assert [(r["_id"], r["x"]) for r in stored] == sorted([("a", 1), (ids[0], 10), (ids[4], 14)])
    assert {(r["_host"], r["_pid"]) for r in stored} == {(host, pid)}
    letters = [f for _mid, f in fake_redis.xrange(f"{settings.queue}:dead")]
    alone = [
        Record(ids[i], "results", data[i], ts[i], host, pid, job, elapsed[i], maxrss[i]).encode()
        for i in (1, 2, 3)
    ]
    assert [f[b"m"] for f in letters] == alone  # each exactly as if emitted alone (version 1)
    assert [f[b"reason"].decode() for f in letters] == [
        "bad column name 'a b': must match [A-Za-z][A-Za-z0-9_]{0,62}",
        "column 'x' holds int values, this record has str",
        "database refused the row: thirteen is unlucky",
    ]
    assert collector.reader.backlog() == 0
    assert collector.counters.records - collector.counters.stored == 3


def test_limits_apply_to_each_record_of_a_batch_entry(emitter, settings, fake_redis) -> None:
    ids = emitter.emit_many([{"s": "y" * 300}] * 4 + [{"s": "y" * 1100}])
    collector = Collector(
        replace(settings, limits=Limits(max_record_bytes=1024)), client=fake_redis
    )
    collector.start()
    drain(collector)
    collector.close()
    assert [r["_id"] for r in rows(settings.db_url, "results")] == sorted(ids[:4])
    ((_mid, letter),) = fake_redis.xrange(f"{settings.queue}:dead")
    assert Record.decode(letter[b"m"]).id == ids[4]
    assert "exceeds the limit of 1024" in letter[b"reason"].decode()


def test_a_batch_entry_over_its_delivery_limit_is_dead_lettered_whole(
    emitter, settings, fake_redis
) -> None:
    emitter.emit_many([{"x": i} for i in range(3)])
    ((_mid, fields),) = fake_redis.xrange(settings.queue)
    Stream(fake_redis, settings.queue, settings.consumer).ensure_group()
    for start in (">", "0", "0", "0", "0", "0"):  # six deliveries, none acknowledged
        fake_redis.xreadgroup("collector", settings.consumer, {settings.queue: start})
    collector = Collector(replace(settings, max_deliveries=5), client=fake_redis)
    collector.start()
    assert drain(collector) == 1
    collector.close()
    ((_dead_id, letter),) = fake_redis.xrange(f"{settings.queue}:dead")
    assert letter[b"m"] == fields[b"m"]  # the entry whole, as it was, not its records
    assert letter[b"reason"].decode().startswith("delivered 7 times without being stored")
    assert fake_redis.xlen(settings.queue) == 0
