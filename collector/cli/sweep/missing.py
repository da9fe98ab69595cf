"""``collector sweep missing``: rerun what a sweep lacks, as RQ jobs, Dask tasks, Slurm array
ranges or CSV."""

from __future__ import annotations

import click
import sqlalchemy as sa

from collector.cli.connect import open_dask, open_db, open_redis
from collector.cli.options import db_option, output_option, redis_options
from collector.cli.sweep.options import dask_options, job_timeout_option, rq_queue_option
from collector.cli.sweep.status import noted
from collector.errors import CommandFailed, ConfigError
from collector.sweeps import daskjobs, ledger
from collector.sweeps.missing import Rerun, prepare_rerun, write_csv
from collector.sweeps.progress import FAILED, MISSING, Progress, rq_progress, unstored
from collector.sweeps.submit import submit_rows


@click.command()
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rq", "dask", "slurm", "csv"]),
    required=True,
    help="rq: enqueue; dask: submit as Dask tasks; slurm: print --array ranges; csv: the points.",
)
@output_option("CSV file to write (default: standard output).")
@click.option(
    "--func", default=None, help="Job function for --format rq|dask (default: the sweep's)."
)
@click.option(
    "--retire-failed",
    is_flag=True,
    help="With --format slurm|csv: move the failed rows to _sweep_failures now, before you "
    "submit their rerun yourself (rq and dask always do, as they resubmit).",
)
@rq_queue_option
@job_timeout_option
@dask_options
@redis_options
@db_option
def missing(
    name: str,
    fmt: str,
    output: str | None,
    func: str | None,
    retire_failed: bool,
    rq_queue: str | None,
    job_timeout: int | None,
    dask_address: str | None,
    scheduler_file: str | None,
    dask_timeout: float,
    redis_url: str,
    queue: str,
    db_url: str,
) -> None:
    """Rerun the missing and failed points of sweep NAME (points queued in RQ, or in flight on
    the Dask scheduler given by --dask or --scheduler-file, are left alone; Slurm is not asked,
    so run --format slurm once the array has left squeue).

    --format rq and dask resubmit the points, and first move their failed rows to
    _sweep_failures: the failure keeps its record there (a rerun's success would replace the
    row) and the point becomes missing until its rerun is stored. --format slurm and csv only
    report and change nothing, unless given --retire-failed. With nothing to rerun, --format
    slurm exits 1 with "nothing to resubmit" and prints nothing, so the sbatch line below
    submits nothing.

    \b
    Examples:
      collector sweep missing ij --format rq
      collector sweep missing ij --format dask --dask tcp://head:8786
      args=$(collector sweep missing ij --format slurm) && sbatch $args job.sh
      collector sweep missing ij --format csv -o todo.csv
    """
    if fmt == "dask" and dask_address is None and scheduler_file is None:
        raise ConfigError("--format dask needs --dask ADDRESS or --scheduler-file FILE")
    with (
        open_db(db_url) as engine,
        open_redis(redis_url) as client,
        open_dask(dask_address, scheduler_file, dask_timeout) as dask,
    ):
        sweep = ledger.load(engine, name)
        func = func or sweep.func
        if fmt in ("rq", "dask") and func is None:
            raise ConfigError(f"sweep {name!r} was never submitted: give --func")
        if dask is not None:
            address = str(dask.scheduler.address)
            state = daskjobs.dask_progress(engine, sweep, address, dask_timeout, set())
        else:
            state = noted(rq_progress(engine, sweep, client, rq_queue, strict=fmt == "rq"))
        if waiting := unstored(client, queue):
            click.echo(
                f"note: {waiting} records still wait in queue {queue!r}; points they "
                "complete are rerun too (harmless: one row per key)",
                err=True,
            )
        if fmt == "slurm" and not (state.count(MISSING) or state.count(FAILED)):
            raise CommandFailed(
                f"nothing to resubmit: every point of sweep {name!r} is done, queued or running"
            )
        rerun = _prepared(engine, state, retire=retire_failed or fmt in ("rq", "dask"))
        if fmt == "rq":
            queue_name = rq_queue or sweep.rq_queue or "default"
            count = submit_rows(
                engine,
                sweep,
                rerun.rows,
                str(func),
                connection=client,
                queue=queue_name,
                job_timeout=job_timeout,
            )
            click.echo(f"queued {count} points of sweep {name!r} on RQ queue {queue_name!r}")
        elif dask is not None and fmt == "dask":
            notes = (client, queue)
            count = daskjobs.submit_rows(dask, engine, sweep, rerun.rows, str(func), notes)
            click.echo(f"submitted {count} points of sweep {name!r} to Dask")
    if fmt == "slurm":
        _print_slurm(rerun)
    elif fmt == "csv":
        with click.open_file(output or "-", "w") as out:
            write_csv(rerun.rows, sweep.params, out)
        if output:
            click.echo(f"wrote {len(rerun.rows)} points to {output}", err=True)


def _prepared(engine: sa.Engine, state: Progress, *, retire: bool) -> Rerun:
    """The rerun, with a note on stderr of the failed rows moved, or of those left in place."""
    rerun = prepare_rerun(engine, state, retire=retire)
    if rerun.retired:
        click.echo(
            f"moved {rerun.retired} failed rows to _sweep_failures for their rerun", err=True
        )
    elif failed := state.count(FAILED):
        click.echo(
            f"{failed} failed rows stay in table {state.sweep.table!r} (a rerun's success "
            "replaces each); --retire-failed moves them to _sweep_failures first",
            err=True,
        )
    return rerun


def _print_slurm(rerun: Rerun) -> None:
    """The --array ranges on stdout, notes on stderr."""
    click.echo(rerun.slurm_array())
    click.echo(
        f"{len(rerun.rows)} points; the array index is _sweep_points.idx, "
        f"the index column of --format csv",
        err=True,
    )
    for note in rerun.slurm_notes():
        click.echo(f"note: {note}", err=True)
