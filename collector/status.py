"""What ``collector status`` and the status page show: the queue (every shard), the consumers,
the dead letters and every table's row count, read with a Redis client and an engine the caller
keeps (the page reuses its own across refreshes; the command opens them once)."""

from __future__ import annotations

from typing import Any

import redis
import sqlalchemy as sa

from collector.db import count_rows, database_exists, make_engine
from collector.errors import first_line
from collector.queuestats import queue_stats
from collector.settings import mask_db_url
from collector.shards import known_streams
from workers.cluster import client_from_url
from workers.names import QueueNames
from workers.urls import masked


def table_counts(engine: sa.Engine | None) -> dict[str, int]:
    """Row count of every table (none without an engine: the database does not exist yet)."""
    if engine is None:
        return {}
    with engine.connect() as conn:
        names = sorted(sa.inspect(conn).get_table_names())
        return {name: count_rows(conn, name) for name in names}


def snapshot(
    client: redis.Redis,
    engine: sa.Engine | None,
    *,
    redis_url: str,
    db_url: str,
    queue: str,
    shards: int | None = None,
) -> dict[str, Any]:
    """Everything ``status`` shows, as one JSON-ready dict: the totals over every shard and,
    with more than one, ``shards``: each stream's backlog, pending and dead letters (the shards,
    then ``<queue>`` itself, where emitters send while they know no shard count). The URLs are
    only shown, passwords masked. A database that cannot be reached leaves ``tables`` empty and
    says why in ``database_error``."""
    streams = known_streams(client, queue, shards)
    stats = queue_stats(client, QueueNames(queue), streams)
    found = {
        **stats,
        "queue_name": queue,
        "redis_url": masked(redis_url),
        "db_url": mask_db_url(db_url),
        "tables": {},
    }
    try:
        found["tables"] = table_counts(engine)
    except sa.exc.OperationalError as exc:  # down: what Redis knows (who fails, why) still shows
        found["database_error"] = f"database unavailable: {first_line(exc)}"
    return found


def gather(redis_url: str, db_url: str, queue: str, shards: int | None = None) -> dict[str, Any]:
    """``snapshot`` with a client and an engine opened for it and closed after (no SQLite file
    is created by looking)."""
    client = client_from_url(redis_url)
    engine = make_engine(db_url) if database_exists(db_url) else None
    try:
        return snapshot(
            client, engine, redis_url=redis_url, db_url=db_url, queue=queue, shards=shards
        )
    finally:
        if engine is not None:
            engine.dispose()
        client.close()


def describe_persistence(found: dict[str, Any]) -> str:
    """One line on what a Redis restart would do to queued records."""
    kinds = [name for name in ("aof", "rdb") if found[name]]
    if kinds:
        return (
            f"persistence {' + '.join(k.upper() for k in kinds)}: queued records survive a restart"
        )
    if found["rdb"] is None:
        return "persistence unknown (CONFIG not allowed); AOF off"
    return "WARNING: no persistence (AOF and RDB off): a restart loses queued records"
