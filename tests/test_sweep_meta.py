"""Scheduler metadata on every record: _job, _host, _elapsed (wall seconds since the process
started) and _maxrss (peak bytes), carried as optional ``src`` keys of wire version 1."""

from __future__ import annotations

import subprocess
import sys

import msgpack
import pytest
import sqlalchemy as sa

from collector.db import make_engine
from collector.store import Schema, Store
from workers import Emitter
from workers.errors import DecodeError
from workers.jobinfo import peak_rss
from workers.record import Record


def test_emitter_fills_job_elapsed_and_peak_rss(fake_redis, monkeypatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "72")  # task 5 of array 72 has job id 77
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    rec = Emitter(queue="q", client=fake_redis).record({"a": 1})
    assert rec.job == "72_5"
    assert 0 < rec.elapsed < 3600
    assert rec.maxrss == peak_rss()
    assert rec.maxrss > 1 << 20  # a Python process holds more than a MiB


def test_record_round_trips_the_new_src_keys() -> None:
    rec = Record("id1", "t", {"a": 1}, 1.0, "h", 2, "j", elapsed=1.5, maxrss=4096)
    back = Record.decode(rec.encode())
    assert (back.elapsed, back.maxrss) == (1.5, 4096)
    wire = msgpack.unpackb(Record("id2", "t", {}, 1.0).encode())
    assert wire["src"] == {"host": "", "pid": 0, "job": None}  # absent when unknown


def test_records_without_the_new_keys_still_decode() -> None:
    raw = msgpack.packb({"v": 1, "id": "x", "t": "t", "ts": 1.0, "src": {"host": "h", "pid": 3,
                        "job": None}, "d": {"a": 1}})  # fmt: skip
    rec = Record.decode(raw)
    assert (rec.elapsed, rec.maxrss, rec.host) == (None, None, "h")


@pytest.mark.parametrize("src", [{"elapsed": "1"}, {"elapsed": True}, {"maxrss": 1.5}])
def test_bad_elapsed_or_maxrss_is_a_decode_error(src) -> None:
    raw = msgpack.packb({"v": 1, "id": "x", "t": "t", "ts": 1.0, "src": src, "d": {}})
    with pytest.raises(DecodeError, match="src elapsed must be a number and maxrss an integer"):
        Record.decode(raw)


FORK_SCRIPT = """
import os, time
t0 = time.monotonic()
from workers.jobinfo import elapsed
time.sleep(0.3)
read, write = os.pipe()
if os.fork() == 0:
    os.write(write, repr(elapsed()).encode())
    os._exit(0)
os.close(write)
os.wait()
print(elapsed(), time.monotonic() - t0, float(os.read(read, 100)))
"""


def test_elapsed_counts_from_process_start_and_restarts_in_a_fork() -> None:
    out = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True,
                         check=True, timeout=60).stdout  # fmt: skip
    parent, since_t0, child = map(float, out.split())
    assert parent > since_t0 >= 0.3  # counts the interpreter's start-up, before any import
    assert child < 0.2  # an RQ work horse counts from its fork


def test_tables_made_before_get_the_new_columns(sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE old (_id VARCHAR(255) PRIMARY KEY, _ts DATETIME, _host TEXT, "
            "_pid INTEGER, _job TEXT, _error TEXT, a BIGINT)"
        )
        conn.exec_driver_sql("INSERT INTO old (_id, a) VALUES ('before', 1)")
    store = Store(engine, Schema())
    rec = Record("after", "old", {"a": 2}, 1.0, "h", 9, "j1", elapsed=2.5, maxrss=1 << 30)
    assert store.write([rec]) == []
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT _id, _job, _elapsed, _maxrss FROM old ORDER BY a"))
        assert rows.all() == [("before", None, None, None), ("after", "j1", 2.5, 1 << 30)]
    engine.dispose()


def test_new_tables_have_every_metadata_column(sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    failed = Record("k", "fresh", {"x": 1, "_error": "ValueError: boom"}, 1.0, elapsed=0.5)
    assert Store(engine, Schema()).write([failed]) == []
    with engine.connect() as conn:
        names = [c["name"] for c in sa.inspect(conn).get_columns("fresh")]
        row = conn.execute(sa.text("SELECT _error, _elapsed, _maxrss FROM fresh")).one()
    engine.dispose()
    assert names == ["_id", "_ts", "_host", "_pid", "_job", "_elapsed", "_maxrss", "_error", "x"]
    assert tuple(row) == ("ValueError: boom", 0.5, None)
