"""``collector wait``: a progress bar (rate, ETA) until a table holds the expected rows."""

from __future__ import annotations

import sys
import time

import click
import sqlalchemy as sa
from tqdm import tqdm

from collector.cli.options import db_option
from collector.db import database_exists, make_engine, row_count
from collector.errors import CommandFailed
from collector.output.tables import check_table_name
from collector.store.classify import Fault, classify


@click.command()
@db_option
@click.option("-t", "--table", required=True, help="Table to watch.")
@click.option("-n", "--count", type=click.IntRange(min=0), required=True, help="Rows to wait for.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Give up after this many seconds (exit 1). Default: wait for ever.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=0.5,
    show_default=True,
    help="Seconds between row counts.",
)
def wait(db_url: str, table: str, count: int, timeout: float | None, interval: float) -> None:
    """Show progress until TABLE has COUNT rows; exit 0 then, or 1 on timeout.

    A table that does not exist yet counts as 0 rows.

    \b
    Example:
      collector wait --table data --count 4000 --timeout 600
    """
    check_table_name(table)
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
