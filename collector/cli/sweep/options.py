"""Options the sweep commands share: the points (--grid, --points, --replicates), RQ's queue
and job timeout, and where the Dask scheduler is (the flags every command takes are in
collector/cli/options.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from collector.cli.finite import FiniteFloat

F = TypeVar("F", bound=Callable[..., Any])

grid_option = click.option(
    "--grid",
    "grids",
    multiple=True,
    metavar="NAME=SPEC",
    help="An axis: NAME=start:stop:step (inclusive) or NAME=v1,v2,... Repeat per axis.",
)
points_option = click.option(
    "--points",
    type=click.Path(exists=True, dir_okay=False),
    help="CSV file of points instead of --grid (header = parameter names).",
)
replicates_option = click.option(
    "--replicates",
    type=click.IntRange(min=1),
    default=None,
    help="Runs per point; the job gets their number as `replicate` (default 1).",
)
rq_queue_option = click.option(
    "--rq-queue", default=None, help="RQ queue (default: the sweep's, else 'default')."
)
job_timeout_option = click.option(
    "--job-timeout", type=click.IntRange(min=1), default=None, help="RQ job timeout in seconds."
)


def dask_options(func: F, timeout: float = 30.0) -> F:
    """--dask ADDRESS and --scheduler-file FILE: the Dask scheduler, by address or by the file
    that ``dask scheduler --scheduler-file`` and dask-jobqueue write; --dask-timeout."""
    func = click.option(
        "--dask-timeout",
        type=FiniteFloat(min=0, min_open=True),
        default=timeout,
        show_default=True,
        help="Seconds to wait for the Dask scheduler to answer.",
    )(func)
    func = click.option(
        "--scheduler-file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Dask scheduler file, instead of --dask.",
    )(func)
    return click.option(
        "--dask",
        "dask_address",
        metavar="ADDRESS",
        default=None,
        help="Dask scheduler address, e.g. tcp://head:8786.",
    )(func)


def dask_status_options(func: F) -> F:
    """``dask_options`` for a command that only asks (``sweep status``): a short timeout, after
    which queued and running show as unknown instead of the command waiting."""
    return dask_options(func, timeout=2.0)
