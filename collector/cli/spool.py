"""``collector spool flush [DIR]``: re-send records emitters kept locally while Redis was away."""

from __future__ import annotations

from pathlib import Path

import click

from collector.cli.connect import open_redis
from collector.cli.options import redis_url_option
from workers.emitter import FIELD
from workers.settings import default_spool_dir, mask_url
from workers.spool import Spool


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
def flush(directory: Path | None, redis_url: str) -> None:
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

        def send(queue: str, payloads: list[bytes]) -> None:
            pipe = client.pipeline(transaction=False)
            for payload in payloads:
                pipe.xadd(queue, {FIELD: payload})
            pipe.execute()

        result = Spool(directory).flush(send, files)
    damaged = f", {result.skipped} damaged frame(s) dropped" if result.skipped else ""
    click.echo(
        f"sent {result.sent} records from {len(files)} file(s) in {directory} "
        f"to {mask_url(redis_url)}{damaged}"
    )
