"""``collector sweep plot``: a heat map or a line of one output over the sweep's inputs."""

from __future__ import annotations

import click

from collector.cli.connect import open_db
from collector.cli.options import db_option
from collector.cli.points import parse_fixed
from collector.sweeps import ledger
from collector.sweeps.plot import plot_sweep


@click.command()
@click.argument("name")
@click.option("--x", "x", required=True, help="Input parameter on the x axis.")
@click.option("--y", "y", default=None, help="Second input: a heat map instead of a line.")
@click.option("--value", required=True, help="Output column to show.")
@click.option(
    "--at",
    "at",
    multiple=True,
    metavar="NAME=VALUE",
    help="Keep only points with this parameter value (repeatable).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Image file (.png, .pdf, .svg).",
)
@db_option
def plot(
    name: str, x: str, y: str | None, value: str, at: tuple[str, ...], output: str, db_url: str
) -> None:
    """A heat map of VALUE over --x and --y, or a line with error bars over --x.

    \b
    Example:
      collector sweep plot ij --x I --y J --value K -o ij.png
    """
    fixed = parse_fixed(at)
    with open_db(db_url) as engine:
        sweep = ledger.load(engine, name)
        used = plot_sweep(engine, sweep, output, x=x, y=y, value=value, at=fixed)
    click.echo(f"wrote {output} from {used} results")
