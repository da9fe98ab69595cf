"""Benchmark result-collector against the tutorial's ways and this machine's ceilings.

All cases in one run, with the tutorial's record (inputs I and J, output K):
  seed-direct  W processes, an ORM session each on one SQLite file (WAL / default journal) or
               PostgreSQL, one commit per result; 'database is locked' failures counted
  seed-json    one JSON file of all results rewritten after each result
  ceiling      sqlite3 executemany in one transaction; Redis drain alone; PostgreSQL COPY (also
               with a commit per 2,000 rows, as the collector commits, for comparison)
  drain        a backlog already in the stream, the collector until it is empty
  end-to-end   P producer processes calling emit while the collector runs
  emit         emit against a bare XADD; emit_many and Emitter(buffer=N) against pipelined XADD
  dask         the tutorial's Dask loop (as_completed, JSON rewritten per result) against Dask
               tasks calling emit, same op, same inputs, one LocalCluster
  shards       a backlog over S = 1, 2, 4 shards drained by C = 1 or 2 collectors (2: PostgreSQL)
  mariadb      the drain into MariaDB against PyMySQL executemany ceilings (--mysql-url)

Prints a table and the target checks; writes JSON and a PNG chart to --out (bench-results/).
Examples, from the repository root:
  .venv/bin/python -m scripts.bench --quick
  .venv/bin/python -m scripts.bench --scale 2 --markdown

run.py       the command: options, the cases in order, the report
seed.py      the tutorial's two ways (seed-direct, seed-json)
ceiling.py   the ceilings, from library calls only
pipeline.py  the collector itself: drain, end-to-end, emit cost
daskway.py   the Dask case
sharded.py   the shards case
mysql.py     the mariadb case
child.py     a collector in its own interpreter (its own peak RSS)
common.py    sizes, the record, temporary queues and databases, filling a backlog
report.py    tables, target checks, JSON and the chart
"""
