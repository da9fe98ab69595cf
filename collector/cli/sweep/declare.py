"""``collector sweep declare``: store a sweep's points and replicates in its ledger."""

from __future__ import annotations

import click

from collector.cli.connect import open_db
from collector.cli.options import db_option
from collector.cli.points import read_points
from collector.cli.sweep.options import grid_option, points_option, replicates_option
from collector.sweeps import ledger


@click.command()
@click.argument("name")
@click.option("--table", required=True, help="Table the sweep's jobs write their results to.")
@grid_option
@points_option
@replicates_option
@db_option
def declare(
    name: str,
    table: str,
    grids: tuple[str, ...],
    points: str | None,
    replicates: int | None,
    db_url: str,
) -> None:
    """Store sweep NAME (its points and replicates) in the database.

    \b
    Example:
      collector sweep declare ij --table results --grid I=0:1:0.1 --grid J=1,2,4 --replicates 3
    """
    todo, spec = read_points(grids, points)
    with open_db(db_url, create=True) as engine:
        found, new = ledger.declare(engine, name, table, todo, replicates or 1, spec, progress=True)
    verb = "declared" if new else "already declared:"
    click.echo(
        f"{verb} sweep {name!r}: {found.points} points x {found.replicates} replicates "
        f"= {found.total} results into table {found.table!r}"
    )
