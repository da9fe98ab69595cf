"""``collector status``: the flags into collector.status.gather, its answer printed."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from collector.cli.options import db_option, redis_options, shards_option
from collector.errors import DatabaseUnavailable
from collector.status import describe_persistence, gather


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
    else:
        show(info)
    if "database_error" in info:  # the report is out; the exit code says it is incomplete
        raise DatabaseUnavailable(info["database_error"])


def show(info: dict[str, Any]) -> None:
    """``status`` as text."""
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
        since, attempts = failing["since"], failing["attempts"]
        took = "" if since is None else f" for {time.time() - since:.0f} s"
        tries = "" if attempts is None else f" ({attempts} attempts)"
        click.echo(f"  consumer {name}: batch failing{took}{tries}: {failing['error']}")
    click.echo(f"redis     {describe_persistence(info['persistence'])}")
    click.echo(f"dead      {info['dead']} dead letters")
    click.echo(f"database  {info['db_url']}")
    for name, count in info["tables"].items():
        click.echo(f"  {name}: {count} rows")
