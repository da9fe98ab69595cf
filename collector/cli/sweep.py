"""``collector sweep``: declare a sweep, submit it to RQ; status, missing and plot follow."""

from __future__ import annotations

import click

from collector.cli.options import db_option, redis_options
from collector.cli.sweep_common import (
    grid_option,
    job_timeout_option,
    open_db,
    open_redis,
    points_option,
    read_points,
    replicates_option,
    sweep_progress,
)
from collector.cli.sweep_report import missing, plot, status
from collector.errors import ConfigError
from collector.sweeps import ledger
from collector.sweeps.status import MISSING
from collector.sweeps.submit import enqueue_points
from workers.settings import mask_url


@click.group()
def sweep() -> None:
    """Parameter sweeps: declare, submit to RQ, follow, resubmit what is missing, plot.

    \b
    Example:
      collector sweep submit mymodule.op --sweep demo --table data --grid I=0:1:0.1 --grid J=1,2
      collector sweep status demo --watch
    """


@sweep.command()
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


@sweep.command()
@click.argument("func")
@grid_option
@points_option
@click.option("--sweep", "sweep_name", default=None, help="Declare (or reuse) this sweep.")
@click.option("--table", default=None, help="Table the jobs write to (needed to declare).")
@replicates_option
@click.option("--rq-queue", default="default", show_default=True, help="RQ queue to enqueue on.")
@job_timeout_option
@redis_options
@db_option
def submit(
    func: str,
    grids: tuple[str, ...],
    points: str | None,
    sweep_name: str | None,
    table: str | None,
    replicates: int | None,
    rq_queue: str,
    job_timeout: int | None,
    redis_url: str,
    queue: str,
    db_url: str,
) -> None:
    """Enqueue FUNC (an import path) once per point; with --sweep, once per point of the sweep
    that is not done, failed or already queued.

    \b
    Example:
      collector sweep submit mymodule.op --sweep ij --table results --grid I=0:1:0.1 --grid J=1,2
      rq worker default --burst      # on each node, as many as it has cores
    """
    if "." not in func:
        raise ConfigError(f"FUNC must be an import path like package.module.function: {func!r}")
    if sweep_name is None:
        if replicates is not None:
            raise ConfigError("--replicates needs --sweep NAME")
        todo, _spec = read_points(grids, points)
        with open_redis(redis_url) as client:
            job_ids = enqueue_points(
                func,
                todo,
                connection=client,
                queue=rq_queue,
                job_timeout=job_timeout,
                progress=True,
            )
        click.echo(f"queued {len(job_ids)} jobs of {func} on RQ queue {rq_queue!r}")
        click.echo(f"run workers:  rq worker {rq_queue} --url {mask_url(redis_url)} [--burst]")
        count = len(job_ids)
        click.echo(f"watch them:   collector wait --table {table or 'TABLE'} --count {count}")
        return
    with open_db(db_url, create=bool(grids or points)) as engine:
        if grids or points:
            if table is None:
                raise ConfigError("--table is needed to declare the sweep")
            todo, spec = read_points(grids, points)
            ledger.declare(engine, sweep_name, table, todo, replicates or 1, spec, progress=True)
        found = ledger.load(engine, sweep_name)
        state = sweep_progress(engine, found, redis_url, rq_queue, strict=True)
        kwargs = [
            row.job_kwargs(found.replicates)
            for row in ledger.point_rows(engine, sweep_name)
            if state.states[row.idx] == MISSING
        ]
        with open_redis(redis_url) as client:
            enqueue_points(
                func,
                kwargs,
                connection=client,
                queue=rq_queue,
                job_timeout=job_timeout,
                progress=True,
            )
        ledger.note_submission(engine, sweep_name, func, rq_queue)
    click.echo(
        f"queued {len(kwargs)} of {found.total} points of sweep {sweep_name!r} on RQ "
        f"queue {rq_queue!r} (the others are done, failed or queued already)"
    )
    click.echo(f"run workers:  rq worker {rq_queue} --url {mask_url(redis_url)} [--burst]")
    click.echo(f"follow them:  collector sweep status {sweep_name} --watch")


sweep.add_command(status)
sweep.add_command(missing)
sweep.add_command(plot)
