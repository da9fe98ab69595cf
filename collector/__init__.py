"""Collector side of result-collector: the daemon that drains the queue into one database, and
``read`` to get a table back as a pandas DataFrame.

How a result travels, by file (the node side is the ``workers`` package):

    job ── workers/api.py emit() ─ workers/record.py (msgpack) ─ workers/emitter.py
           emit_many(), buffer=N ─ workers/entry.py (batch entries, wire version 2)
           workers/delivery.py XADD: retries, then (Redis away) workers/spool.py, re-sent first
                                       workers/link.py: the client, the connection file followed
                              │  Redis Stream <queue>, or with --shards N the streams <queue>:{i}
                              ▼  (workers/names.py: every key of a queue, spelled once;
                                  workers/shards.py: routing by record id, the count followed)
    cli/run.py            ``collector run``: flags into service.py (connect, models, metrics),
                          settings.py (one resolver with workers/settings.py), signals.py, logs.py
    daemon.py             run_once(): next batch ─ write ─ finish (ack); run() repeats it
      ├─ reader.py        the Reader protocol; StreamReader: the read policy on one stream
      │                   (own pending first, claims, read ahead, read counts, suspects)
      ├─ shards.py        ShardedReader: one StreamReader per stream that holds records
      ├─ stream.py        one stream's Redis commands: group, read, claim, dead-letter, ack
      ├─ batch.py         one batch from read to ack: entries, records, raw bytes, dead letters;
      │                   records checked column by column (workers/columnar.py)
      ├─ sink.py          the Sink protocol the daemon writes through (Store implements it)
      ├─ store/           the only SQL of the write path; store.py: one transaction a batch
      │    columns.py     metadata columns, value kinds
      │    schema.py      tables in memory, a batch planned against them
      │    ddl.py         create, add, widen, inside the batch's transaction
      │    conflict.py    one row per _id: the first emitted; a success replaces a failure
      │    writers.py     rows as tuples, the generic insert; each counts the rows it added
      │    classify.py    transient (retry), tied to records (bisect), unknown (fault.py)
      ├─ dialects/        one module per database, everything that differs: types, the
      │                   conflict insert, widening, refused names, error codes, the fast
      │                   writer (sqlite.py executemany, postgresql.py COPY); any other
      │                   database is refused in one line
      ├─ models.py        --models: the user's declared tables, checked strictly; a column
      │                   that would store a value altered refuses it (dialects/exact.py)
      ├─ db.py            engines (by their dialect, JSON), existence, row counts
      └─ lock.py          one writer per SQLite file
                              │
                              ▼  the database
    output/               results back out: tables.py (by name), read.py (pandas),
                          formats.py (CSV, JSON lines, Parquet for ``collector export``)
    arrays/               --arrays: numpy arrays (workers/arrays.py on the wire) into one HDF5
                          file: sink.py wraps the store, rows.py (the committed pointers),
                          layout.py, superblock.py, export.py
    sweeps/               parameter sweeps: ledger, progress, missing (reruns), submit, plot,
                          accounting (Slurm's sacct fields per point)
    status.py             what ``status`` and the page show, from a client and engine kept
    server/               ``collector serve``: serve.py (the order of things), process.py (the
                          private redis-server, its own user and id), claim.py (the name, the
                          connection file; workers/identity.py checks the server answering,
                          workers/guard.py ends an RQ worker whose server went away)
    web/                  the status page: app.py, data.py, hosts.py (the Host header check),
                          peers.py (without a token: only its own user's connections)
    cli/                  one file per command, each only adapting flags to calls (sweep/: one
                          per subcommand, sweep/options.py their flags); options.py (where
                          Redis, the database, the queue are), daemon_options.py (run's and
                          serve's flags), connect.py, values.py and points.py (text into
                          values), failure.py
    deadletters.py        a stream's dead letters, for ``collector dead``
    queuestats.py, lag.py the queue's figures for ``status`` and the metrics
    seen.py               whether a collector was seen on a queue (``collector wait`` warns)
    errors.py             the error tree, the exit codes (RET_*), translate() from libraries
    demo/                 ``scripts/demo``: a whole sweep through RQ workers, end to end
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collector.daemon import Collector
    from collector.errors import NoSuchTable
    from collector.models import load_models
    from collector.output.read import read
    from collector.settings import Settings

__all__ = ["Collector", "NoSuchTable", "Settings", "load_models", "read"]

# Each public name and the module that defines it, imported on first use (PEP 562): a command
# such as ``collector emit`` imports ``collector.cli`` and must not pay for the daemon and
# SQLAlchemy that these names bring.
_HOMES = {
    "Collector": "collector.daemon",
    "NoSuchTable": "collector.errors",
    "Settings": "collector.settings",
    "load_models": "collector.models",
    "read": "collector.output.read",
}


def __getattr__(name: str) -> Any:
    """The public name ``name``, imported from its module the first time it is asked for."""
    if name not in _HOMES:
        raise AttributeError(f"module 'collector' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the lazily imported public ones included."""
    return sorted({*globals(), *__all__})
