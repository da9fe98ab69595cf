"""Options shared by subcommands: where Redis, the database and the queue are, each read from
its COLLECTOR_* variable when the flag is absent and checked here, once, by the same rules as
``Settings.validate`` (a bad value is a ConfigError: one line, RET_CONFIG)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from collector.settings import DEFAULT_DB_URL, check_db_url, check_queue, check_redis_url
from workers.settings import DEFAULT_QUEUE, DEFAULT_REDIS_URL

F = TypeVar("F", bound=Callable[..., Any])
REDIS_HELP = "Redis to read from (redis://, rediss://)."


def _checked(check: Callable[[str], str]) -> Callable[[click.Context, click.Parameter, str], str]:
    """A click callback that runs ``check`` on the option's value."""
    return lambda _ctx, _param, value: check(value)


valid_redis_url = _checked(check_redis_url)
valid_db_url = _checked(check_db_url)


def redis_url_option(help: str = REDIS_HELP) -> Callable[[F], F]:
    """--redis-url, also read from COLLECTOR_REDIS_URL."""
    return click.option(
        "--redis-url",
        envvar="COLLECTOR_REDIS_URL",
        default=DEFAULT_REDIS_URL,
        show_default=True,
        show_envvar=True,
        callback=valid_redis_url,
        help=help,
    )


def redis_options(func: F) -> F:
    """--redis-url and --queue, each also read from its COLLECTOR_* variable."""
    func = click.option(
        "--queue",
        envvar="COLLECTOR_QUEUE",
        default=DEFAULT_QUEUE,
        show_default=True,
        show_envvar=True,
        callback=_checked(check_queue),
        help="Redis Stream the records travel on.",
    )(func)
    return redis_url_option()(func)


def db_option(func: F) -> F:
    """--db-url, also read from COLLECTOR_DB_URL."""
    return click.option(
        "--db-url",
        envvar="COLLECTOR_DB_URL",
        default=DEFAULT_DB_URL,
        show_default=True,
        show_envvar=True,
        callback=valid_db_url,
        help="SQLAlchemy URL of the database.",
    )(func)


# --- the sweep commands' options -------------------------------------------------------------

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


def dask_options(func: F) -> F:
    """--dask ADDRESS and --scheduler-file FILE: the Dask scheduler, by address or by the file
    that ``dask scheduler --scheduler-file`` and dask-jobqueue write; --dask-timeout."""
    func = click.option(
        "--dask-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=30.0,
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
