"""``collector sweep submit``: run a job function once per point, or once per point of a sweep
that is not done, failed or queued already: as RQ jobs, or as Dask tasks with --dask or
--scheduler-file."""

from __future__ import annotations

import click
import sqlalchemy as sa

from collector.cli.connect import open_dask, open_db, open_redis
from collector.cli.options import (
    dask_options,
    db_option,
    grid_option,
    job_timeout_option,
    points_option,
    redis_options,
    replicates_option,
)
from collector.cli.points import read_points
from collector.errors import ConfigError
from collector.sweeps import daskjobs, ledger
from collector.sweeps.progress import MISSING, rows_in, rq_progress
from collector.sweeps.submit import enqueue_points, submit_rows
from workers.settings import mask_url


@click.command()
@click.argument("func")
@grid_option
@points_option
@click.option("--sweep", "sweep_name", default=None, help="Declare (or reuse) this sweep.")
@click.option("--table", default=None, help="Table the jobs write to (needed to declare).")
@replicates_option
@click.option("--rq-queue", default="default", show_default=True, help="RQ queue to enqueue on.")
@job_timeout_option
@dask_options
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
    dask_address: str | None,
    scheduler_file: str | None,
    dask_timeout: float,
    redis_url: str,
    queue: str,
    db_url: str,
) -> None:
    """Enqueue FUNC (an import path) once per point; with --sweep, once per point of the sweep
    that is not done, failed or already queued. With --dask or --scheduler-file each point is
    a Dask task instead, fire and forget: the command returns once the scheduler has them.

    \b
    Examples:
      collector sweep submit mymodule.op --sweep ij --table results --grid I=0:1:0.1 --grid J=1,2
      rq worker default --burst      # on each node, as many as it has cores
      collector sweep submit mymodule.op --sweep ij --dask tcp://head:8786
      collector sweep submit mymodule.op --sweep ij --scheduler-file ~/scheduler.json
    """
    if "." not in func:
        raise ConfigError(f"FUNC must be an import path like package.module.function: {func!r}")
    if sweep_name is None and replicates is not None:
        raise ConfigError("--replicates needs --sweep NAME")
    if dask_address is not None or scheduler_file is not None:
        _submit_to_dask(
            func, grids, points, sweep_name, table, replicates, dask_address, scheduler_file,
            dask_timeout, db_url,
        )  # fmt: skip
        return
    with open_redis(redis_url) as client:
        if sweep_name is None:
            todo, _spec = read_points(grids, points)
            job_ids = enqueue_points(
                func,
                todo,
                connection=client,
                queue=rq_queue,
                job_timeout=job_timeout,
                progress=True,
            )
            count = len(job_ids)
            click.echo(f"queued {count} jobs of {func} on RQ queue {rq_queue!r}")
            follow = f"watch them:   collector wait --table {table or 'TABLE'} --count {count}"
        else:
            with open_db(db_url, create=bool(grids or points)) as engine:
                found = _declared(engine, sweep_name, table, grids, points, replicates)
                state = rq_progress(engine, found, client, rq_queue, strict=True)
                rows = rows_in(engine, state, MISSING)
                count = submit_rows(
                    engine,
                    found,
                    rows,
                    func,
                    connection=client,
                    queue=rq_queue,
                    job_timeout=job_timeout,
                )
            click.echo(
                f"queued {count} of {found.total} points of sweep {sweep_name!r} on RQ "
                f"queue {rq_queue!r} (the others are done, failed or queued already)"
            )
            follow = f"follow them:  collector sweep status {sweep_name} --watch"
    click.echo(f"run workers:  rq worker {rq_queue} --url {mask_url(redis_url)} [--burst]")
    click.echo(follow)


def _declared(
    engine: sa.Engine,
    name: str,
    table: str | None,
    grids: tuple[str, ...],
    points: str | None,
    replicates: int | None,
) -> ledger.Sweep:
    """Sweep ``name``, declared first when points are given (then ``table`` is needed)."""
    if grids or points:
        if table is None:
            raise ConfigError("--table is needed to declare the sweep")
        todo, spec = read_points(grids, points)
        ledger.declare(engine, name, table, todo, replicates or 1, spec, progress=True)
    return ledger.load(engine, name)


def _submit_to_dask(
    func: str,
    grids: tuple[str, ...],
    points: str | None,
    sweep_name: str | None,
    table: str | None,
    replicates: int | None,
    dask_address: str | None,
    scheduler_file: str | None,
    dask_timeout: float,
    db_url: str,
) -> None:
    """The points (or the sweep's points not done, failed or in flight) as Dask tasks."""
    with open_dask(dask_address, scheduler_file, dask_timeout) as client:
        assert client is not None  # an address or a file was given
        where = dask_address or str(client.scheduler.address)
        if sweep_name is None:
            todo, _spec = read_points(grids, points)
            count = daskjobs.submit_points(client, func, todo)
            click.echo(f"submitted {count} tasks of {func} to Dask at {where}")
            click.echo(f"watch them:   collector wait --table {table or 'TABLE'} --count {count}")
            return
        with open_db(db_url, create=bool(grids or points)) as engine:
            found = _declared(engine, sweep_name, table, grids, points, replicates)
            rows = rows_in(engine, daskjobs.dask_progress(engine, found, client), MISSING)
            count = daskjobs.submit_rows(client, engine, found, rows, func)
    click.echo(
        f"submitted {count} of {found.total} points of sweep {sweep_name!r} to Dask at {where} "
        "(the others are done, failed or in flight already)"
    )
    click.echo(f"follow them:  collector sweep status {sweep_name} --watch")
