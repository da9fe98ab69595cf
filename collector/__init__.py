"""Collector side of result-collector: the daemon that drains the queue into one database, and
``read`` to get a table back as a pandas DataFrame.

How a result travels, by file (the node side is the ``workers`` package):

    job ── workers/api.py emit() ─ workers/record.py (msgpack) ─ workers/emitter.py XADD
           emit_many(), buffer=N ─ workers/entry.py (batch entries, wire version 2)
                                       (Redis away: workers/spool.py, re-sent later)
                              │  Redis Stream <queue>, or with --shards N the streams <queue>:{i}
                              ▼  (workers/shards.py: names, routing by record id, the count)
    cli/run.py            ``collector run``: settings.py, signals, logs.py
    daemon.py             run_once(): read ─ decode ─ store ─ ack; run() repeats it
      ├─ stream.py        the daemon's Redis code: group, read (pipelined ahead), claim, ack
      ├─ shards.py        --shards N: one Stream per shard read as one queue, ids tagged
      ├─ deadletters.py   the dead-letter stream, for ``collector dead``
      ├─ lag.py           the backlog in entries and in time, for the metrics
      ├─ batch.py         one batch from read to ack: entries, records, raw bytes, dead letters;
      │                   records checked column by column (workers/columnar.py)
      ├─ store/           the only SQL of the write path; store.py: one transaction a batch
      │    columns.py     metadata columns, value kinds
      │    schema.py      tables in memory, a batch planned against them
      │    ddl.py         create, add, widen, inside the batch's transaction
      │    conflict.py    one row per _id: the first emitted; a success replaces a failure
      │    writers.py     rows as tuples, the generic insert; each counts the rows it added
      │    classify.py    transient (retry), tied to records (bisect), unknown
      ├─ dialects/        one module per database, everything that differs: types, the
      │                   conflict insert, widening, refused names, error codes, the fast
      │                   writer (sqlite.py executemany, postgresql.py COPY); any other
      │                   database is refused in one line
      ├─ models.py        --models: the user's declared tables, checked strictly
      ├─ db.py            engines (by their dialect, JSON), existence, row counts
      └─ lock.py          one writer per SQLite file
                              │
                              ▼  the database
    output/               results back out: tables.py (by name), read.py (pandas),
                          formats.py (CSV, JSON lines, Parquet for ``collector export``)
    sweeps/               parameter sweeps: ledger, progress, missing (reruns), submit, plot
    cli/                  one file per command (sweep/: one per subcommand); options.py,
                          connect.py, values.py and points.py (text into values), failure.py
    deadletters.py        the dead-letter stream for ``collector dead``
    errors.py             the error tree, the exit codes (RET_*), translate() from libraries
    demo/                 ``scripts/demo``: a whole sweep through RQ workers, end to end
"""

from collector.daemon import Collector
from collector.errors import NoSuchTable
from collector.models import load_models
from collector.output.read import read
from collector.settings import Settings

__all__ = ["Collector", "NoSuchTable", "Settings", "load_models", "read"]
