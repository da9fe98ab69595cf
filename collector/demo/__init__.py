"""The demo: a sweep of the tutorial's example (I, J -> K) through RQ workers into one database.

run.py        the command: find a Redis, start ``collector run``, enqueue, workers, summary
broker.py     a Redis: the user's, or a private redis-server (PATH or the server extra)
processes.py  child processes started with a log and stopped however the demo ends
results.py    the database side: empty table, progress bar, summary, picture
jobs.py       the job the RQ workers import (only it and ``workers``)
"""
