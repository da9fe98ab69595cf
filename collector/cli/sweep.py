"""``collector sweep``: submit a parameter sweep as RQ jobs."""

from __future__ import annotations

import click
import redis

from collector.cli.options import redis_options
from collector.errors import ConfigError
from collector.sweeps.grid import csv_points, grid_points
from collector.sweeps.submit import enqueue_points
from workers.settings import mask_url


@click.group()
def sweep() -> None:
    """Parameter sweeps: enqueue one RQ job per point."""


@sweep.command()
@click.argument("func")
@click.option(
    "--grid",
    "grids",
    multiple=True,
    metavar="NAME=SPEC",
    help="An axis: NAME=start:stop:step (inclusive) or NAME=v1,v2,... Repeat per axis.",
)
@click.option(
    "--points",
    type=click.Path(exists=True, dir_okay=False),
    help="CSV file of points instead of --grid (header = parameter names).",
)
@click.option("--rq-queue", default="default", show_default=True, help="RQ queue to enqueue on.")
@click.option("--table", default=None, help="Table the job writes to (for the watch command).")
@click.option(
    "--job-timeout", type=click.IntRange(min=1), default=None, help="RQ job timeout in seconds."
)
@redis_options
def submit(
    func: str, grids: tuple[str, ...], points: str | None, rq_queue: str, table: str | None,
    job_timeout: int | None, redis_url: str, queue: str,
) -> None:  # fmt: skip
    """Enqueue FUNC (an import path) once per point of the grid.

    \b
    Example:
      collector sweep submit mymodule.op --grid I=0:1:0.05 --grid J=1,2,4,8 --rq-queue sweep
      rq worker sweep --burst      # on each node, as many as it has cores
    """
    if bool(grids) == bool(points):
        raise ConfigError("give either --grid (one or more) or --points, not both")
    if "." not in func:
        raise ConfigError(f"FUNC must be an import path like package.module.function: {func!r}")
    todo = grid_points(list(grids)) if grids else csv_points(points or "")
    client = redis.Redis.from_url(redis_url)
    try:
        job_ids = enqueue_points(
            func, todo, connection=client, queue=rq_queue, job_timeout=job_timeout, progress=True
        )
    finally:
        client.close()
    click.echo(f"queued {len(job_ids)} jobs of {func} on RQ queue {rq_queue!r}")
    click.echo(f"run workers:  rq worker {rq_queue} --url {mask_url(redis_url)} [--burst]")
    click.echo(f"watch them:   collector wait --table {table or 'TABLE'} --count {len(job_ids)}")
