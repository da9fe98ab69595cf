"""The shards case: drain rate of one backlog spread over S shards by C collectors.

On this machine every shard is a stream on the one local Redis, and the collectors share its
cores with Redis and PostgreSQL: the case measures what sharding costs the collector (a read
per shard, the round-robin) and how C collectors share a backlog, not the growth a Redis
Cluster gives, where each shard has its own server and each collector its own cores (see
docs/scaling.md for that model).
"""

from __future__ import annotations

from typing import Any

from scripts.bench.common import count_rows, fill, read_line, start_child


def drain(
    redis_url: str, db_url: str, queue: str, count: int, batch: int, shards: int, collectors: int
) -> dict[str, Any]:
    """``count`` records already spread over ``shards`` streams; ``collectors`` collectors
    (consumers c0, c1, ...) start together and run until the queue is empty. The rate is the
    records over the time from the common start to the last commit."""
    fill(redis_url, queue, count, f"fill (shards={shards})", shards=shards)
    flags = ("--shards", str(shards), "--until-empty")
    children = [
        start_child(redis_url, db_url, queue, 0, batch, *flags, "--consumer", f"c{k}")
        for k in range(collectors)
    ]
    for child in children:
        read_line(child)  # ready: the group exists on every shard
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    reports = [read_line(child) for child in children]
    for child in children:
        child.wait()
    start = min(r["started"] for r in reports)
    end = max(r["last_commit"] or r["started"] for r in reports)
    stored, distinct = count_rows(db_url)
    seconds = max(end - start, 1e-9)
    return {
        "records": sum(r["records"] for r in reports),
        "seconds": seconds,
        "rate": sum(r["records"] for r in reports) / seconds,
        "batches": sum(r["batches"] for r in reports),
        "stored": stored,
        "distinct": distinct,
        "dead": sum(r["dead"] for r in reports),
        "per_collector": [r["records"] for r in reports],
    }
