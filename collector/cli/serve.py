"""``collector serve``: a private redis-server plus the collector, for clusters without a Redis.
This module adapts the flags; collector.server.serve does the work (and says in which order it
stops, and why)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import click

from collector import logs
from collector.cli.daemon_options import daemon_options
from collector.cli.options import db_option
from collector.errors import ConfigError
from collector.server.serve import ServeOptions
from collector.server.serve import serve as run_serve
from collector.settings import Settings, check_durable
from workers.connection import DEFAULT_SERVER, check_name
from workers.settings import DEFAULT_QUEUE, DEFAULT_REDIS_URL


@click.command()
@functools.partial(db_option, from_file=False)
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    help="Address Redis listens on: one the compute nodes reach (e.g. the login node's "
    "cluster address, or 0.0.0.0 for all; the file then names this host).",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Redis port [default: a free one]."
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Redis's data directory (append-only file, log) "
    "[default: ~/.local/share/result-collector/NAME].",
)
@click.option(
    "--name",
    envvar="COLLECTOR_SERVER",
    show_envvar=True,
    default=DEFAULT_SERVER,
    show_default=True,
    help="Server name: the connection file is NAME.json; jobs pick "
    "a name other than 'default' with COLLECTOR_SERVER.",
)
@click.option(
    "--queue",
    envvar="COLLECTOR_QUEUE",
    show_envvar=True,
    default=DEFAULT_QUEUE,
    show_default=True,
    help="Redis Stream the records travel on (written to the file: jobs use it).",
)
@click.option(
    "--appendfsync",
    type=click.Choice(["everysec", "always"]),
    default="everysec",
    show_default=True,
    help="everysec: a machine crash loses at most ~1 s of records; "
    "always: none, at a cost in emit rate (README: On a cluster).",
)
@daemon_options
def serve(
    name: str,
    bind: str,
    port: int,
    directory: Path | None,
    appendfsync: str,
    verbose: bool,
    **options: object,
) -> None:
    """Start a private Redis and the collector; jobs find them through a connection file.

    Writes ~/.config/result-collector/NAME.json (COLLECTOR_CONFIG_DIR overrides; mode 0600):
    emitters and every collector command use it when COLLECTOR_REDIS_URL is unset. Stops in
    order on SIGTERM or Ctrl-C.

    \b
    Examples:
      collector serve                                  # on a login node, loopback only
      collector serve --bind 0.0.0.0 --db-url sqlite:///$HOME/sweep.db   # for compute nodes
    """
    logs.configure(verbose)
    try:
        check_name(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    # Every flag is checked before anything starts; the Redis URL is ours, known once it runs.
    settings = Settings.from_env(**{**options, "redis_url": DEFAULT_REDIS_URL})
    check_durable(settings.db_url)
    if os.environ.get("COLLECTOR_REDIS_URL"):
        click.echo(
            "warning: COLLECTOR_REDIS_URL is set here: jobs that inherit it use that Redis, "
            "not this server",
            err=True,
        )
    where = ServeOptions(name, bind, port, directory, appendfsync)
    run_serve(settings, where, click.echo)
