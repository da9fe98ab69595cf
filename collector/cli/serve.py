"""``collector serve``: a private redis-server plus the collector, for clusters without a Redis.

It takes the server name, starts redis-server (random password, append-only file in ``--dir``)
and publishes the connection file jobs find it by; it then runs the collector in this process
until SIGTERM or Ctrl-C. Shutdown order, and why: the collector finishes and acknowledges its
batch while Redis still runs (an acknowledgement needs it); then Redis writes its append-only file
and stops (records emitted meanwhile are kept for the next serve); then the connection file goes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import click

from collector import logs
from collector.cli.options import db_option
from collector.cli.run import daemon_options, run_collector
from collector.errors import BrokerUnavailable, ConfigError
from collector.server.binary import find_redis_server
from collector.server.claim import ServerClaim
from collector.server.process import RedisConfig, RedisProcess, running, url_for
from collector.settings import Settings, mask_db_url
from workers.connection import DEFAULT_SERVER, ServerInfo, check_name
from workers.jobinfo import host_name
from workers.settings import DEFAULT_QUEUE, DEFAULT_REDIS_URL

WILDCARDS = ("0.0.0.0", "::", "*")


def default_dir(name: str) -> Path:
    """Where server ``name`` keeps its data: $XDG_DATA_HOME or ~/.local/share, result-collector."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return Path(base) / "result-collector" / name


def advertised_host(bind: str) -> str:
    """The address jobs connect to: the bound one, or this machine's name for a wildcard."""
    return socket.getfqdn() if bind in WILDCARDS else bind


def install_signal_handlers(stop: threading.Event, emergency: list[Callable[[], object]]) -> None:
    """First SIGTERM, SIGINT or SIGHUP (the login session closed): stop in order (see the module
    docstring). Second: run ``emergency`` (stop Redis, remove the file) and exit at once;
    unacknowledged records stay pending in the append-only file and are stored by the next
    serve."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            for step in emergency:
                with contextlib.suppress(Exception):  # exit regardless; Redis dies with us
                    step()
            os._exit(128 + signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, handle)


def watch(server: RedisProcess, stop: threading.Event, died: list[int]) -> threading.Thread:
    """A thread that stops the collector when redis-server exits on its own."""

    def loop() -> None:
        while not stop.wait(0.5):
            code = server.proc.poll()
            if code is not None:
                died.append(code)
                stop.set()

    thread = threading.Thread(target=loop, name="redis-watch", daemon=True)
    thread.start()
    return thread


@click.command()
@db_option
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
    if os.environ.get("COLLECTOR_REDIS_URL"):
        click.echo(
            "warning: COLLECTOR_REDIS_URL is set here: jobs that inherit it use that Redis, "
            "not this server",
            err=True,
        )
    binary = find_redis_server()
    stop = threading.Event()
    emergency: list[Callable[[], object]] = []
    install_signal_handlers(stop, emergency)
    died: list[int] = []
    with ExitStack() as stack:  # unwound in reverse: Redis stops, then the file goes
        claim = ServerClaim(name)
        claim.acquire()
        stack.callback(claim.release)
        config = RedisConfig(
            bind=bind,
            port=port,
            directory=directory or default_dir(name),
            password=secrets.token_urlsafe(24),
            appendfsync=appendfsync,
            server_id=secrets.token_hex(16),
        )
        try:
            server = stack.enter_context(running(binary, config))
        except OSError as exc:
            raise BrokerUnavailable(f"cannot listen on {bind}: {exc}") from None
        emergency[:] = [lambda: server.stop(timeout=10), claim.release]
        info = publish(claim, server, settings.queue)
        click.echo(status_line(info, server, settings, claim.path))
        watch(server, stop, died)
        counters = run_collector(replace(settings, redis_url=server.config.local_url()), stop)
    click.echo(
        f"stopped: {counters.stored} records stored, {counters.dead} dead letters; "
        f"redis-server stopped; {claim.path} removed"
    )
    if died:
        raise BrokerUnavailable(
            f"redis-server exited on its own (code {died[0]}); see {server.log}"
        )


def publish(claim: ServerClaim, server: RedisProcess, queue: str) -> ServerInfo:
    """Write the connection file for ``server``."""
    host, config = advertised_host(server.config.bind), server.config
    info = ServerInfo(
        name=claim.name,
        url=url_for(host, config.port, config.password),
        host=host,
        port=config.port,
        pid=os.getpid(),
        hostname=host_name(),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        queue=queue,
        slurm_job_id=os.environ.get("SLURM_JOB_ID"),
        server_id=config.server_id,
    )
    claim.publish(info)
    return info


def status_line(info: ServerInfo, server: RedisProcess, settings: Settings, path: Path) -> str:
    """What serve tells the person who started it (never the password)."""
    pick = "" if info.name == DEFAULT_SERVER else f" when they have COLLECTOR_SERVER={info.name}"
    return (
        f"collector serve {info.name!r}: {server.binary.describe()} on {info.host}:{info.port}, "
        f"data in {server.config.directory} (appendfsync {server.config.appendfsync}); "
        f"rows into {mask_db_url(settings.db_url)}, queue {settings.queue}\n"
        f"jobs find it through {path}{pick}; stop with Ctrl-C or SIGTERM"
    )
