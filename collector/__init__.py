"""Collector side of result-collector: the daemon that drains the queue into one database, and
``read`` to get a table back as a pandas DataFrame.

How a result travels, by file (the node side is the ``workers`` package):

    job ── workers/api.py emit() ─ workers/record.py (msgpack) ─ workers/emitter.py XADD
           emit_many(), buffer=N ─ workers/entry.py (batch entries, wire version 2)
                                       (Redis away: workers/spool.py, re-sent first)
                                       workers/link.py: the client, the connection file followed
                              │  Redis Stream <queue>, or with --shards N the streams <queue>:{i}
                              ▼  (workers/shards.py: names, routing by record id, the count)
    cli/run.py            ``collector run``: flags into service.py (connect, models, metrics),
                          settings.py (one resolver with workers/settings.py), signals.py, logs.py
    daemon.py             run_once(): read ─ decode ─ store ─ ack; run() repeats it
      ├─ stream.py        the daemon's Redis code: group, read (pipelined ahead), claim, ack
      ├─ shards.py        --shards N: one Stream per shard read as one queue, ids tagged
      ├─ deadletters.py   the dead-letter stream, for ``collector dead``
      ├─ lag.py           the backlog in entries and in time, for the metrics
      ├─ batch.py         one batch from read to ack: entries, records, raw bytes, dead letters;
      │                   records checked column by column (workers/columnar.py)
      ├─ store/           the only SQL of the write path; store.py: one transaction a batch
      │    columns.py     metadata columns, value kinds, names a database refuses
      │    schema.py      tables in memory, a batch planned against them
      │    ddl.py         create, add, widen, inside the batch's transaction
      │    conflict.py    one row per _id; a success replaces a stored failure
      │    writers.py     executemany (SQLite), COPY (PostgreSQL), the generic insert
      │    classify.py    transient (retry), tied to records (bisect), unknown
      ├─ models.py        --models: the user's declared tables, checked strictly
      ├─ db.py            engines (SQLite pragmas, JSON), existence, row counts
      └─ lock.py          one writer per SQLite file
                              │
                              ▼  the database
    output/               results back out: tables.py (by name), read.py (pandas),
                          formats.py (CSV, JSON lines, Parquet for ``collector export``)
    sweeps/               parameter sweeps: ledger, progress, missing (reruns), submit, plot
    status.py             what ``status`` and the page show, from a client and engine kept
    server/               ``collector serve``: serve.py (the order of things), process.py (the
                          private redis-server, its own user and id), claim.py (the name, the
                          connection file; workers/identity.py checks the server answering)
    web/                  the status page: app.py, data.py, hosts.py (the Host header check)
    cli/                  one file per command, each only adapting flags to calls (sweep/: one
                          per subcommand); options.py (shared flags), connect.py, values.py and
                          points.py (text into values), failure.py
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
