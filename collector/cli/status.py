"""``collector status``: the queue, the dead letters and every table's row count."""

from __future__ import annotations

import json
import time
from typing import Any

import click
import sqlalchemy as sa

from collector.cli.connect import open_redis
from collector.cli.options import db_option, redis_options, shards_option
from collector.db import count_rows, database_exists, make_engine
from collector.queuestats import queue_stats
from collector.settings import mask_db_url
from collector.shards import known_streams
from workers.names import QueueNames
from workers.settings import mask_url


def table_counts(db_url: str) -> dict[str, int]:
    """Row count of every table in the database (none when a SQLite file does not exist yet)."""
    if not database_exists(db_url):
        return {}
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            names = sorted(sa.inspect(conn).get_table_names())
            return {name: count_rows(conn, name) for name in names}
    finally:
        engine.dispose()


def gather(redis_url: str, db_url: str, queue: str, shards: int | None = None) -> dict[str, Any]:
    """Everything ``status`` shows, as one JSON-ready dict: the totals over every shard and,
    with more than one, ``shards``: each stream's backlog, pending and dead letters (the shards,
    then ``<queue>`` itself, where emitters send while they know no shard count)."""
    with open_redis(redis_url) as client:
        streams = known_streams(client, queue, shards)
        stats = queue_stats(client, QueueNames(queue), streams)
    return {
        **stats,
        "queue_name": queue,
        "redis_url": mask_url(redis_url),
        "db_url": mask_db_url(db_url),
        "tables": table_counts(db_url),
    }


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


@click.command()
@redis_options
@db_option
@shards_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(redis_url: str, db_url: str, queue: str, shards: int | None, as_json: bool) -> None:
    """Show the backlog, pending records, dead letters and row counts.

    \b
    Example:
      collector status --json
    """
    info = gather(redis_url, db_url, queue, shards)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"queue     {info['queue_name']} on {info['redis_url']}: {info['queue']} records")
    click.echo(f"pending   {info['pending']} (read, not yet acknowledged)")
    for one in info.get("shards", []):
        click.echo(
            f"  shard {one['stream']}: {one['queue']} records, {one['pending']} pending, "
            f"{one['dead']} dead letters"
        )
    for c in info["consumers"]:
        click.echo(f"  consumer {c['name']}: {c['pending']} pending, idle {c['idle_ms']} ms")
    for name, failing in info["failing"].items():
        since = time.time() - failing["since"]
        click.echo(
            f"  consumer {name}: batch failing for {since:.0f} s "
            f"({failing['attempts']} attempts): {failing['error']}"
        )
    click.echo(f"redis     {describe_persistence(info['persistence'])}")
    click.echo(f"dead      {info['dead']} dead letters")
    click.echo(f"database  {info['db_url']}")
    for name, count in info["tables"].items():
        click.echo(f"  {name}: {count} rows")
