"""Helpers shared by the ``collector sweep`` subcommands: options, opening the database and
Redis, reading points, and progress with the running points from RQ."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
import redis
import sqlalchemy as sa

from collector.db import database_exists, make_engine
from collector.errors import ConfigError
from collector.settings import mask_db_url
from collector.sweeps.grid import Point, csv_points, grid_points
from collector.sweeps.ledger import Sweep
from collector.sweeps.status import Progress, active_keys, progress

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


@contextlib.contextmanager
def open_db(db_url: str, *, create: bool = False) -> Iterator[sa.Engine]:
    """An engine for ``db_url``, disposed afterwards; a missing SQLite file is an error unless
    ``create`` (so a typo in the URL does not leave an empty database behind)."""
    if not create and not database_exists(db_url):
        raise ConfigError(f"database {mask_db_url(db_url)} does not exist")
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def open_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def read_points(grids: tuple[str, ...], points: str | None) -> tuple[list[Point], str]:
    """The points from --grid or --points, and how they were given (kept in ``_sweeps.spec``)."""
    if bool(grids) == bool(points):
        raise ConfigError("give either --grid (one or more) or --points, not both")
    if grids:
        return grid_points(list(grids)), " ".join(f"--grid {g}" for g in grids)
    return csv_points(points or ""), f"--points {points}"


def sweep_progress(
    engine: sa.Engine, sweep: Sweep, redis_url: str, rq_queue: str | None, strict: bool
) -> Progress:
    """Progress with running points from RQ; if not ``strict``, a Redis outage leaves running
    unknown (with a note) instead of failing."""
    queue_name = rq_queue or sweep.rq_queue
    if queue_name is None:
        return progress(engine, sweep, running=set())  # never submitted to RQ: nothing running
    try:
        with open_redis(redis_url) as client:
            running = active_keys(client, queue_name, sweep.table)
    except redis.RedisError as exc:
        if strict:
            raise
        click.echo(f"note: running points unknown, redis unavailable: {exc}", err=True)
        return progress(engine, sweep, running=None)
    return progress(engine, sweep, running)


def unstored(redis_url: str, queue: str) -> int | None:
    """Records in the queue stream the collector has not stored yet (None: Redis unavailable)."""
    try:
        with open_redis(redis_url) as client:
            return int(client.xlen(queue))
    except redis.RedisError:
        return None
