"""``collector sweep status``: how many points are done, failed, queued, running and missing,
once or as a progress bar until every point has its row."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import click
import sqlalchemy as sa
from tqdm import tqdm

from collector.cli.connect import dask_address_of, open_db, open_redis
from collector.cli.finite import FiniteFloat
from collector.cli.options import db_option, redis_options
from collector.cli.sweep.options import dask_status_options, rq_queue_option
from collector.errors import ConfigError
from collector.sweeps import accounting, ledger
from collector.sweeps.accounting import sacct_command
from collector.sweeps.jobs import sweep_progress
from collector.sweeps.progress import (
    DONE,
    FAILED,
    MISSING,
    QUEUED,
    RUNNING,
    STATES,
    Progress,
    unstored,
)


@click.command(name="status")
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sacct"]),
    default="text",
    show_default=True,
    help="json: one JSON object; sacct: one CSV line a point with Slurm's State, ExitCode, "
    "Elapsed and MaxRSS of the task that stored its row (needs sacct).",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--watch", is_flag=True, help="Show a progress bar until every point has a row.")
@click.option(
    "--interval",
    type=FiniteFloat(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@rq_queue_option
@dask_status_options
@redis_options
@db_option
def sweep_status(
    name: str,
    fmt: str,
    as_json: bool,
    watch: bool,
    interval: float,
    rq_queue: str | None,
    dask_address: str | None,
    scheduler_file: str | None,
    dask_timeout: float,
    redis_url: str,
    queue: str,
    db_url: str,
) -> None:
    """Points of sweep NAME done, failed (_error set), queued (waiting in RQ or on the Dask
    scheduler), running (started by a worker) and missing. A sweep submitted to Dask is asked
    from the scheduler it was submitted to, unless --dask or --scheduler-file names another.

    \b
    Examples:
      collector sweep status ij --watch
      collector sweep status ij --dask tcp://head:8786
      collector sweep status ij --format sacct > ij_acct.csv
    """
    if as_json and fmt not in ("text", "json"):
        raise ConfigError(f"--json and --format {fmt} ask for two formats: give one")
    fmt = "json" if as_json else fmt
    sacct = sacct_command() if fmt == "sacct" else None
    address = dask_address_of(dask_address, scheduler_file)
    with open_db(db_url) as engine, open_redis(redis_url) as client:
        sweep = ledger.load(engine, name)

        def read() -> Progress:
            return sweep_progress(
                engine, sweep, client, queue, rq_queue=rq_queue, dask_address=address,
                dask_timeout=dask_timeout,
            )  # fmt: skip

        state = _watch(sweep, interval, read) if watch else read()
        noted(state)
        info = {**state.as_dict(), "unstored": unstored(client, queue)}
        if sacct is not None:
            _print_accounting(engine, sweep, sacct)
            return
    if fmt == "json":
        click.echo(json.dumps(info))
        return
    click.echo(
        f"sweep {name}: {sweep.points} points x {sweep.replicates} replicates = "
        f"{sweep.total} results into table {sweep.table!r}"
    )
    for key in STATES:
        shown = info[key] if key not in (QUEUED, RUNNING) or state.running_known else "?"
        click.echo(f"  {key:<8} {shown}")
    if info["unstored"]:
        click.echo(f"note: {info['unstored']} records wait in queue {queue!r}: counts may grow")
    if info[FAILED] or info[MISSING]:
        click.echo(f"rerun them:  collector sweep missing {name} --format rq|dask|slurm|csv")


def _print_accounting(engine: sa.Engine, sweep: ledger.Sweep, sacct: str) -> None:
    """One CSV line a point on stdout, with sacct's fields for the task that stored its row; a
    note on stderr of the Slurm jobs sacct has no line for (purged, another cluster's)."""
    points = accounting.point_jobs(engine, sweep)
    names = accounting.slurm_names(job for _, job in points)
    found = accounting.sacct_fields(names, accounting.run_sacct(sacct))
    with click.open_file("-", "w") as out:
        accounting.write_accounting(points, found, sweep.params, out)
    if unknown := len(names - found.keys()):
        click.echo(
            f"note: sacct has no accounting of {unknown} of the {len(names)} Slurm jobs "
            "the rows name",
            err=True,
        )


def noted(state: Progress) -> Progress:
    """``state``, after a note on stderr when RQ or Dask could not be asked for the queued and
    running points."""
    if state.jobs_error is not None:
        click.echo(f"note: queued and running points unknown: {state.jobs_error}", err=True)
    return state


def _summary(state: Progress) -> str:
    shown = {key: str(state.count(key)) for key in STATES}
    if not state.running_known:
        shown[QUEUED] = shown[RUNNING] = "?"
    return ", ".join(f"{shown[key]} {key}" for key in STATES)


def _watch(sweep: ledger.Sweep, interval: float, read: Callable[[], Progress]) -> Progress:
    """A progress bar of done + failed points, refreshed every ``interval`` s until complete."""
    state = read()
    finished = state.count(DONE) + state.count(FAILED)
    with tqdm(total=sweep.total, initial=finished, unit="point", desc=sweep.name) as bar:
        while True:
            bar.set_postfix_str(_summary(state), refresh=True)
            if state.complete:
                return state
            time.sleep(interval)
            state = read()
            now = state.count(DONE) + state.count(FAILED)
            bar.update(now - finished)
            finished = now
