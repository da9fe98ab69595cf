"""``collector wait``: a progress bar (rate, ETA) until a table holds the expected rows."""

from __future__ import annotations

import functools
import sys
import time

import click
import sqlalchemy as sa
from tqdm import tqdm

from collector.cli.finite import FiniteFloat
from collector.cli.options import db_option, redis_options, resolve_redis
from collector.db import database_exists, make_engine, row_count
from collector.errors import BrokerUnavailable, CommandFailed, ConfigError
from collector.output.tables import check_table_name
from collector.seen import unseen_warning
from collector.settings import mask_db_url
from collector.store.classify import Fault, classify


def warn_unseen(redis_url: str | None, queue: str) -> None:
    """Warn once on stderr when no collector has been seen on the queue (or Redis cannot say):
    waiting would then last for ever. A file's server not answering is that warning too."""
    try:
        url, queue = (redis_url, queue) if redis_url else resolve_redis(None, queue)
        assert url is not None
        warning = unseen_warning(url, queue)
    except (BrokerUnavailable, ConfigError) as exc:
        warning = f"warning: cannot tell whether a collector runs: {exc}"
    if warning is not None:
        click.echo(warning, err=True)


@click.command()
@functools.partial(redis_options, check=False)
@db_option
@click.option("-t", "--table", required=True, help="Table to watch.")
@click.option("-n", "--count", type=click.IntRange(min=0), required=True, help="Rows to wait for.")
@click.option(
    "--timeout",
    type=FiniteFloat(min=0),
    default=None,
    help="Give up after this many seconds (exit 1). Default: wait for ever.",
)
@click.option(
    "--interval",
    type=FiniteFloat(min=0.01),
    default=0.5,
    show_default=True,
    help="Seconds between row counts.",
)
def wait(
    redis_url: str | None,
    queue: str,
    db_url: str,
    table: str,
    count: int,
    timeout: float | None,
    interval: float,
) -> None:
    """Show progress until TABLE has COUNT rows; exit 0 then, or 1 on timeout.

    A table that does not exist yet counts as 0 rows. Says which database it reads, and warns
    when no collector has been seen on the queue (rows arrive only through one).

    \b
    Example:
      collector wait --table data --count 4000 --timeout 600
    """
    check_table_name(table)
    click.echo(f"database  {mask_db_url(db_url)}", err=True)
    warn_unseen(redis_url, queue)
    deadline = None if timeout is None else time.monotonic() + timeout
    engine = make_engine(db_url)

    rows = 0

    def rows_now() -> int:
        """The row count now; the last one while the database is busy (a writer creating it)."""
        try:
            return row_count(engine, table) if database_exists(db_url) else 0
        except sa.exc.DBAPIError as exc:
            if classify(exc) is not Fault.TRANSIENT:
                raise
            engine.dispose()
            return rows

    try:
        rows = rows_now()
        with tqdm(
            total=count,
            initial=min(rows, count),
            unit="rows",
            desc=table,
            file=sys.stderr,
            dynamic_ncols=True,
        ) as bar:
            while True:
                bar.update(min(rows, count) - bar.n)
                if rows >= count:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    bar.close()
                    raise CommandFailed(
                        f"timed out after {timeout:g} s: table {table} has {rows} of {count} rows"
                    )
                pause = interval if deadline is None else min(interval, deadline - time.monotonic())
                time.sleep(max(pause, 0.0))
                rows = rows_now()
    finally:
        engine.dispose()
    click.echo(f"{table}: {rows} rows", err=True)
