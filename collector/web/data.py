"""What the status page shows beyond ``status --json``, read from the database and Redis on each
request (nothing kept in memory, so the page says the same after a restart of ``collector web``):
each table's newest row, the stored rate over the last minutes, the sweeps' progress and heat
maps, and one page of dead letters."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from collector import dialects
from collector.cli.render import shorten
from collector.deadletters import DeadLetter, newest_of, shard_letters
from collector.sweeps import ledger
from collector.sweeps.jobs import sweep_progress
from collector.sweeps.plot import plot_sweep
from workers.errors import DecodeError
from workers.keys import REPLICATE
from workers.record import Record

PREVIEW_CHARS = 160
REASON_CHARS = 300  # a longer reason (written by hand into Redis) is cut, as `dead list` does
DASK_TIMEOUT = 2.0  # seconds a Dask scheduler has to answer a refresh, as sweep status gives
NUMERIC = (sa.Integer, sa.Float, sa.Numeric)
_PYPLOT = threading.Lock()  # pyplot keeps global state: one heat map at a time


def _utc_naive(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None)


def _iso(value: Any) -> str | None:
    """A stored ``_ts`` (naive UTC; SQLite may hand back text) as ISO text marked UTC."""
    if value is None:
        return None
    text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else str(value)
    return text.replace("T", " ")[:19] + "Z"


def _timed_tables(conn: sa.Connection) -> list[sa.Table]:
    """The results tables (names not starting with ``_``) that have an ``_ts`` column."""
    found = []
    for name in sorted(sa.inspect(conn).get_table_names()):
        if name.startswith("_"):
            continue
        table = sa.Table(name, sa.MetaData(), sa.Column("_ts", sa.DateTime))
        if any(c["name"] == "_ts" for c in sa.inspect(conn).get_columns(name)):
            found.append(table)
    return found


def newest_rows(engine: sa.Engine) -> dict[str, str | None]:
    """The ``_ts`` (emit time, UTC) of each results table's newest row."""
    with engine.connect() as conn:
        return {
            t.name: _iso(conn.scalar(sa.select(sa.func.max(t.c._ts)))) for t in _timed_tables(conn)
        }


def stored_rate(
    engine: sa.Engine, minutes: int = 10, bucket: int = 10, now: float | None = None
) -> dict[str, Any]:
    """Rows stored per second over the last ``minutes``, in ``bucket``-second steps, counted by
    the rows' emit time (``_ts``) over every results table: the rate of what has arrived."""
    now = time.time() if now is None else now
    first = int(now) // bucket - minutes * 60 // bucket + 1
    counts: dict[int, int] = {}
    with engine.connect() as conn:
        for table in _timed_tables(conn):
            step = dialects.get(engine.dialect.name).epoch(table.c._ts) // bucket
            query = (
                sa.select(step, sa.func.count())
                .where(table.c._ts >= _utc_naive(first * bucket))
                .group_by(step)
            )
            for slot, count in conn.execute(query):
                if slot is not None:
                    counts[int(slot)] = counts.get(int(slot), 0) + int(count)
    return stored_rate_from(counts, minutes, bucket, now)


def stored_rate_from(
    counts: dict[int, int], minutes: int, bucket: int, now: float
) -> dict[str, Any]:
    """Rows per step (by step number) as the chart's series: every step of the window, in
    order, rows per second; steps after ``now`` (a clock ahead of ours) are left out."""
    last = int(now) // bucket
    slots = range(last - minutes * 60 // bucket + 1, last + 1)
    return {
        "bucket_seconds": bucket,
        "t": [slot * bucket for slot in slots],
        "rate": [counts.get(slot, 0) / bucket for slot in slots],
    }


def stored_rate_empty(minutes: int = 10, bucket: int = 10) -> dict[str, Any]:
    """The rate while there is no database yet: zero in every step."""
    return stored_rate_from({}, minutes, bucket, time.time())


def heatmap_value(engine: sa.Engine, sweep: ledger.Sweep) -> str | None:
    """The output drawn in a sweep's heat map: its table's first numeric data column that is not
    a parameter; None when the sweep has fewer than two parameters or no such column yet."""
    if len(sweep.params) < 2:
        return None
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(sweep.table):
            return None
        columns = sa.inspect(conn).get_columns(sweep.table)
    skip = {*sweep.params, REPLICATE}
    for column in columns:
        name = column["name"]
        if not name.startswith("_") and name not in skip and isinstance(column["type"], NUMERIC):
            return str(name)
    return None


def sweep_state(
    engine: sa.Engine,
    sweep: ledger.Sweep,
    client: redis.Redis,
    queue: str,
    gone: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One sweep for the page, counted by the function ``collector sweep status`` counts with
    (points x replicates = total; queued and running as RQ or the Dask scheduler report them;
    ``gone``: the schedulers that did not answer for an earlier sweep of this refresh)."""
    shape = {"points": sweep.points, "replicates": sweep.replicates}
    found = sweep_progress(engine, sweep, client, queue, dask_timeout=DASK_TIMEOUT, gone=gone)
    return {**found.as_dict(), **shape}


def sweeps(engine: sa.Engine, client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """Every declared sweep's ``sweep_state`` and the output its heat map shows."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(ledger.SWEEPS.name):
            return []
        names = conn.scalars(sa.select(ledger.SWEEPS.c.name).order_by(ledger.SWEEPS.c.name))
        names_list = list(names)
    found = []
    gone: dict[str, str] = {}  # a scheduler that does not answer costs one timeout a refresh
    for name in names_list:
        sweep = ledger.load(engine, name)
        heatmap = heatmap_value(engine, sweep)
        found.append({**sweep_state(engine, sweep, client, queue, gone), "heatmap": heatmap})
    return found


def heatmap_png(engine: sa.Engine, name: str) -> bytes | None:
    """The sweep's heat map as PNG (``collector sweep plot`` with its first two parameters);
    None when it has nothing to draw yet."""
    sweep = ledger.load(engine, name)
    value = heatmap_value(engine, sweep)
    if value is None:
        return None
    with _PYPLOT, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "heatmap.png"
        plot_sweep(engine, sweep, out, x=sweep.params[0], y=sweep.params[1], value=value)
        return out.read_bytes()


def _when(letter: DeadLetter) -> str | None:
    """A dead letter's ``ts`` as UTC time when it is one, else as stored (cut short): whoever
    wrote the letter, the page lists it."""
    if letter.ts is not None:
        try:
            return _iso(_utc_naive(letter.ts))
        except (OverflowError, ValueError, OSError):
            pass
    if letter.ts_text is None:
        return None
    return letter.ts_text[:PREVIEW_CHARS]


def _letter(stream: str, letter: DeadLetter) -> dict[str, Any]:
    """A dead letter for the page: id, its stream (the shard), time, reason, and the record's
    table and data, cut short."""
    table: str | None = None
    if letter.raw is None:
        preview = "(no record bytes)"
    else:
        try:
            record = Record.decode(letter.raw)
            table = record.table
            preview = json.dumps(record.data, default=repr, ensure_ascii=False)
        except DecodeError:
            preview = repr(letter.raw[:PREVIEW_CHARS])
    return {
        "id": letter.id,
        "stream": stream,
        "ts": _when(letter),
        "reason": shorten(letter.reason, REASON_CHARS),
        "table": table,
        "preview": shorten(preview, PREVIEW_CHARS),
    }


def dead_page(client: redis.Redis, queue: str, page: int, size: int) -> dict[str, Any]:
    """Page ``page`` (from 1) of the dead letters of every shard, ``size`` per page, newest
    first."""
    every = shard_letters(client, queue)
    total = sum(one.count() for one in every)
    pages = max(1, -(-total // size))
    items = newest_of(every, (page - 1) * size, size)
    return {
        "total": total,
        "page": page,
        "size": size,
        "pages": pages,
        "items": [_letter(stream, letter) for stream, letter in items],
    }
