"""``collector sweep status | missing | plot``: what a sweep has, what it lacks, and a picture."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import click
from tqdm import tqdm

from collector.cli.options import db_option, redis_options
from collector.cli.sweep_common import (
    job_timeout_option,
    open_db,
    open_redis,
    rq_queue_option,
    sweep_progress,
    unstored,
)
from collector.errors import ConfigError
from collector.sweeps import ledger
from collector.sweeps.missing import array_ranges, retire_failed, write_csv
from collector.sweeps.plot import plot_sweep
from collector.sweeps.status import DONE, FAILED, MISSING, RUNNING, Progress
from collector.sweeps.submit import enqueue_points
from collector.values import parse_value

SLURM_MAX_ARRAY_INDEX = 1000  # Slurm's default MaxArraySize is 1001


def _summary(state: Progress) -> str:
    running = state.count(RUNNING) if state.running_known else "?"
    return (
        f"{state.count(DONE)} done, {state.count(FAILED)} failed, {running} running, "
        f"{state.count(MISSING)} missing"
    )


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


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--watch", is_flag=True, help="Show a progress bar until every point has a row.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@rq_queue_option
@redis_options
@db_option
def status(
    name: str,
    as_json: bool,
    watch: bool,
    interval: float,
    rq_queue: str | None,
    redis_url: str,
    queue: str,
    db_url: str,
) -> None:
    """Points of sweep NAME done, failed (_error set), running (queued in RQ) and missing.

    \b
    Example:
      collector sweep status ij --watch
    """
    with open_db(db_url) as engine:
        sweep = ledger.load(engine, name)

        def read() -> Progress:
            return sweep_progress(engine, sweep, redis_url, rq_queue, strict=False)

        state = _watch(sweep, interval, read) if watch else read()
    info = {**state.as_dict(), "unstored": unstored(redis_url, queue)}
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(
        f"sweep {name}: {sweep.points} points x {sweep.replicates} replicates = "
        f"{sweep.total} results into table {sweep.table!r}"
    )
    for key in (DONE, FAILED, RUNNING, MISSING):
        shown = info[key] if key != RUNNING or state.running_known else "?"
        click.echo(f"  {key:<8} {shown}")
    if info["unstored"]:
        click.echo(f"note: {info['unstored']} records wait in queue {queue!r}: counts may grow")
    if info[FAILED] or info[MISSING]:
        click.echo(f"rerun them:  collector sweep missing {name} --format rq|slurm|csv")


@click.command()
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rq", "slurm", "csv"]),
    required=True,
    help="rq: enqueue; slurm: print --array ranges; csv: write the points.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="CSV file to write (default: standard output).",
)
@click.option("--func", default=None, help="Job function for --format rq (default: the sweep's).")
@rq_queue_option
@job_timeout_option
@redis_options
@db_option
def missing(
    name: str,
    fmt: str,
    output: str | None,
    func: str | None,
    rq_queue: str | None,
    job_timeout: int | None,
    redis_url: str,
    queue: str,
    db_url: str,
) -> None:
    """Rerun the missing and failed points of sweep NAME (points queued in RQ are left alone).

    Failed rows are moved to _sweep_failures first, so the reruns' results are stored.

    \b
    Examples:
      collector sweep missing ij --format rq
      sbatch $(collector sweep missing ij --format slurm) job.sh
      collector sweep missing ij --format csv -o todo.csv
    """
    with open_db(db_url) as engine:
        sweep = ledger.load(engine, name)
        func = func or sweep.func
        if fmt == "rq" and func is None:
            raise ConfigError(f"sweep {name!r} was never submitted to RQ: give --func")
        state = sweep_progress(engine, sweep, redis_url, rq_queue, strict=fmt == "rq")
        if waiting := unstored(redis_url, queue):
            click.echo(
                f"note: {waiting} records still wait in queue {queue!r}; points they "
                "complete are rerun too (harmless: one row per key)",
                err=True,
            )
        todo = set(state.indexes(MISSING, FAILED))
        rows = [row for row in ledger.point_rows(engine, name) if row.idx in todo]
        failed = set(state.indexes(FAILED))
        moved = retire_failed(engine, sweep, [row for row in rows if row.idx in failed])
        if moved:
            click.echo(f"moved {moved} failed rows to _sweep_failures for their rerun", err=True)
        if fmt == "rq":
            queue_name = rq_queue or sweep.rq_queue or "default"
            with open_redis(redis_url) as client:
                enqueue_points(
                    str(func),
                    [row.job_kwargs(sweep.replicates) for row in rows],
                    connection=client,
                    queue=queue_name,
                    job_timeout=job_timeout,
                    progress=True,
                )
            ledger.note_submission(engine, name, str(func), queue_name)
            click.echo(f"queued {len(rows)} points of sweep {name!r} on RQ queue {queue_name!r}")
    if fmt == "slurm":
        if rows:
            click.echo(f"--array={array_ranges(row.idx for row in rows)}")
        click.echo(
            f"{len(rows)} points; the array index is _sweep_points.idx, "
            f"the index column of --format csv",
            err=True,
        )
        if rows and rows[-1].idx > SLURM_MAX_ARRAY_INDEX:
            click.echo("note: indexes above 1000 need Slurm's MaxArraySize raised", err=True)
    elif fmt == "csv":
        with click.open_file(output or "-", "w") as out:
            write_csv(rows, sweep.params, out)
        if output:
            click.echo(f"wrote {len(rows)} points to {output}", err=True)


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
    fixed = {}
    for item in at:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"bad --at {item!r}: expected NAME=VALUE")
        fixed[key] = parse_value(text)
    with open_db(db_url) as engine:
        sweep = ledger.load(engine, name)
        used = plot_sweep(engine, sweep, output, x=x, y=y, value=value, at=fixed)
    click.echo(f"wrote {output} from {used} results")
