"""A soak of combined faults: producers emitting through every door for minutes, while a seeded
schedule kills, pauses, fills and locks what they depend on; then a checker holds every
acknowledged record against the rows, the dead letters, Redis, status and metrics.

    .venv/bin/python -m scripts.soak --seed 7 --minutes 1 --db sqlite
    .venv/bin/python -m scripts.soak --seed 7 --minutes 5 --db postgresql --shards 2

run.py       one run: setup, producers, faults, the end, the checker; cleanup whatever happens
workload.py  what producers send, from the seed; producer.py the producer process
receipts.py  the producers' fsync'd account of each call, and reading it back
faults.py    the seeded schedule and its execution; broker.py the private Redis;
             databases.py SQLite / PostgreSQL / MySQL behind one interface; fleet.py the
             collector and producer processes; procs.py child processes that cannot outlive us
canary.py    what Redis's fsync policy may lose, bounded
final.py     spools, drain, status and metrics at the end; check.py the checker; report.py
"""
