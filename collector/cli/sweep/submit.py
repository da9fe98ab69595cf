"""``collector sweep submit``: run a job function once per point, or once per point of a sweep
that is not done, failed or queued already: as RQ jobs, or as Dask tasks with --dask or
--scheduler-file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import click
import sqlalchemy as sa

from collector.cli.connect import open_dask, open_db, open_redis
from collector.cli.options import db_option, redis_options
from collector.cli.points import read_points
from collector.cli.sweep.options import (
    dask_options,
    grid_option,
    job_timeout_option,
    points_option,
    replicates_option,
)
from collector.errors import ConfigError
from collector.sweeps import daskjobs, ledger
from collector.sweeps.ledger import Point
from collector.sweeps.progress import MISSING, rows_in, rq_progress
from collector.sweeps.submit import enqueue_points, submit_rows


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
      rq worker -c workers.rqconfig default --burst      # on each node, one per core
      collector sweep submit mymodule.op --sweep ij --dask tcp://head:8786
      collector sweep submit mymodule.op --sweep ij --scheduler-file ~/scheduler.json
    """
    if "." not in func:
        raise ConfigError(f"FUNC must be an import path like package.module.function: {func!r}")
    if sweep_name is None and replicates is not None:
        raise ConfigError("--replicates needs --sweep NAME")
    asked = Asked(func, grids, points, sweep_name, table, replicates, db_url)
    if dask_address is not None or scheduler_file is not None:
        _submit_to_dask(asked, (dask_address, scheduler_file, dask_timeout), redis_url, queue)
    else:
        _submit_to_rq(asked, rq_queue, job_timeout, redis_url)


@dataclass(frozen=True)
class Asked:
    """What the command was asked to run: FUNC on the points given, or on a sweep's points."""

    func: str
    grids: tuple[str, ...]
    points: str | None
    sweep: str | None
    table: str | None
    replicates: int | None
    db_url: str

    def todo(self) -> list[Point]:
        """The points given on the command line (no sweep)."""
        return read_points(self.grids, self.points)[0]

    @contextlib.contextmanager
    def declared(self) -> Iterator[tuple[sa.Engine, ledger.Sweep]]:
        """The database and the sweep, declared first when points are given (then --table is
        needed)."""
        given = bool(self.grids or self.points)
        with open_db(self.db_url, create=given) as engine:
            if given:
                if self.table is None:
                    raise ConfigError("--table is needed to declare the sweep")
                todo, spec = read_points(self.grids, self.points)
                ledger.declare(
                    engine, str(self.sweep), self.table, todo, self.replicates or 1, spec,
                    progress=True,
                )  # fmt: skip
            yield engine, ledger.load(engine, str(self.sweep))

    def follow(self, count: int) -> str:
        if self.sweep is None:
            return f"watch them:   collector wait --table {self.table or 'TABLE'} --count {count}"
        return f"follow them:  collector sweep status {self.sweep} --watch"


def _submit_to_rq(asked: Asked, rq_queue: str, job_timeout: int | None, redis_url: str) -> None:
    """The points (or the sweep's points not done, failed or queued) as RQ jobs."""
    with open_redis(redis_url) as client:
        if asked.sweep is None:
            job_ids = enqueue_points(
                asked.func,
                asked.todo(),
                connection=client,
                queue=rq_queue,
                job_timeout=job_timeout,
                progress=True,
            )
            count = len(job_ids)
            click.echo(f"queued {count} jobs of {asked.func} on RQ queue {rq_queue!r}")
        else:
            with asked.declared() as (engine, found):
                state = rq_progress(engine, found, client, rq_queue, strict=True)
                rows = rows_in(engine, state, MISSING)
                count = submit_rows(
                    engine,
                    found,
                    rows,
                    asked.func,
                    connection=client,
                    queue=rq_queue,
                    job_timeout=job_timeout,
                )
            click.echo(
                f"queued {count} of {found.total} points of sweep {asked.sweep!r} on RQ "
                f"queue {rq_queue!r} (the others are done, failed or queued already)"
            )
    click.echo(f"run workers:  rq worker -c workers.rqconfig {rq_queue} [--burst]")
    click.echo(asked.follow(count))


def _submit_to_dask(
    asked: Asked, scheduler: tuple[str | None, str | None, float], redis_url: str, queue: str
) -> None:
    """The points (or the sweep's points not done, failed or in flight) as Dask tasks; for a
    sweep, the scheduler's address is noted in Redis (``queue``) for ``sweep status``."""
    address, scheduler_file, timeout = scheduler
    with open_dask(address, scheduler_file, timeout) as client:
        assert client is not None  # an address or a file was given
        where = str(client.scheduler.address)
        if asked.sweep is None:
            count = daskjobs.submit_points(client, asked.func, asked.todo())
            click.echo(f"submitted {count} tasks of {asked.func} to Dask at {where}")
        else:
            with asked.declared() as (engine, found), open_redis(redis_url) as connection:
                state = daskjobs.dask_progress(engine, found, where, timeout, set())
                rows = rows_in(engine, state, MISSING)
                notes = (connection, queue)
                count = daskjobs.submit_rows(client, engine, found, rows, asked.func, notes)
            click.echo(
                f"submitted {count} of {found.total} points of sweep {asked.sweep!r} to Dask "
                f"at {where} (the others are done, failed or in flight already)"
            )
    click.echo(asked.follow(count))
