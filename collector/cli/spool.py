"""``collector spool flush [DIR]``: re-send records emitters kept locally while Redis was away."""

from __future__ import annotations

from pathlib import Path

import click

from collector.cli.connect import open_redis
from collector.cli.options import redis_url_option, shards_option
from collector.shards import known_shards
from workers.names import FIELD, QueueNames
from workers.settings import default_spool_dir
from workers.shards import route
from workers.spool import Spool
from workers.urls import masked


@click.group()
def spool() -> None:
    """Records emitters spooled to local files while Redis was unreachable.

    \b
    Example:
      collector spool flush ~/.cache/result-collector/spool
    """


@spool.command()
@click.argument(
    "directory",
    required=False,
    envvar="COLLECTOR_SPOOL_DIR",
    type=click.Path(file_okay=False, path_type=Path),
)
@redis_url_option("Redis to send them to (each record goes to its own queue).")
@shards_option
def flush(directory: Path | None, redis_url: str, shards: int | None) -> None:
    """Send every spooled record (ids unchanged, so sending twice is harmless) and delete what
    was delivered. DIRECTORY defaults to COLLECTOR_SPOOL_DIR, else the per-user cache.

    \b
    Example:
      collector spool flush ~/.cache/result-collector/spool
    """
    directory = directory or default_spool_dir()
    files = Spool(directory).files()
    if not files:
        click.echo(f"no spooled records in {directory}")
        return
    with open_redis(redis_url) as client:
        counts: dict[str, int] = {}  # per queue: --shards, else what its collector published

        def send(queue: str, payloads: list[bytes]) -> None:
            if queue not in counts:
                counts[queue] = known_shards(client, queue, shards)
            for stream, group in route(QueueNames(queue), counts[queue], payloads).items():
                pipe = client.pipeline(transaction=False)  # one shard's key a pipeline
                for payload in group:
                    pipe.xadd(stream, {FIELD: payload})
                pipe.execute()

        result = Spool(directory).flush(send, files)
    kept = ", ".join(map(str, result.aside))
    damaged = f", {result.skipped} damaged span(s) kept in {kept}" if result.skipped else ""
    click.echo(
        f"sent {result.sent} records from {len(files)} file(s) in {directory} "
        f"to {masked(redis_url)}{damaged}"
    )
