"""``collector run``: the daemon, with warm (first signal) and cold (second signal) shutdown."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

import click
import redis

from collector import logs
from collector.cli.options import F, db_option, port_value, redis_options
from collector.daemon import Backoff, Collector, Counters
from collector.models import prepare_models
from collector.observer import Observer
from collector.settings import Settings
from collector.stream import reader_client
from workers.record import Limits
from workers.shards import MAX_SHARDS

log = logging.getLogger(__name__)


def install_signal_handlers(stop: threading.Event) -> None:
    """First SIGTERM/SIGINT: finish the batch and exit 0. Second: exit at once (records stay
    pending in Redis and are redelivered, so nothing is lost)."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(128 + signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


# The record limits (workers.record.Limits): each a --max-... flag, at least 1, with the field's
# own default.
LIMIT_HELP = {
    "max_record_bytes": "Larger records are dead-lettered.",
    "max_depth": "Records with values nested deeper are dead-lettered.",
    "max_fields": "Records with more data fields are dead-lettered.",
    "max_str_len": "Records holding a longer string or bytes value are dead-lettered.",
}
DAEMON_OPTIONS = [
    click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=Settings.batch_size,
        show_default=True,
        help="Most records per transaction.",
    ),
    click.option(
        "--max-wait",
        type=click.FloatRange(min=0),
        default=Settings.max_wait,
        show_default=True,
        help="Seconds to wait for records when the queue is empty.",
    ),
    click.option("--consumer", default=None, help="Consumer name (default: the host name)."),
    click.option(
        "--claim-idle",
        type=click.FloatRange(min=0),
        default=Settings.claim_idle,
        show_default=True,
        help="Seconds before another consumer's unacknowledged records are taken over.",
    ),
    click.option(
        "--max-deliveries",
        type=click.IntRange(min=1),
        default=Settings.max_deliveries,
        show_default=True,
        help="A record delivered more often without being stored is dead-lettered.",
    ),
    *(
        click.option(
            f"--{name.replace('_', '-')}",
            type=click.IntRange(min=1),
            default=getattr(Limits, name),
            show_default=True,
            help=text,
        )
        for name, text in LIMIT_HELP.items()
    ),
    click.option(
        "--models",
        default=None,
        help="Your SQLAlchemy declarative module (import path or .py file): its tables are "
        "created if missing and records for them must match the declared columns.",
    ),
    click.option(
        "--shards",
        envvar="COLLECTOR_SHARDS",
        show_envvar=True,
        type=click.IntRange(min=1, max=MAX_SHARDS),
        default=None,
        help="Streams the queue is spread over: 1 is the single stream <queue>; N > 1 are "
        "<queue>:{0}..<queue>:{N-1}, one Redis Cluster slot each.  [default: 1]",
    ),
    click.option(
        "--arrays",
        default=None,
        help="An HDF5 file to write the records' numpy arrays into (rows point at them; "
        "needs the hdf5 extra). Env: COLLECTOR_ARRAYS.",
    ),
    click.option("-v", "--verbose", is_flag=True, help="Debug logging."),
]


def daemon_options(func: F) -> F:
    """The daemon's flags (batch size, waits, limits, --models, -v): ``run`` and ``serve`` take
    the same ones."""
    for option in reversed(DAEMON_OPTIONS):
        func = option(func)
    return func


def connect(redis_url: str, stop: threading.Event) -> redis.Redis | None:
    """A client for ``redis_url``. A Redis Cluster client asks a node for the slot map as it is
    built: until one answers, wait and retry as the daemon does for one server (None: stopped
    first)."""
    backoff = Backoff()
    while not stop.is_set():
        try:
            return reader_client(redis_url)
        except redis.ConnectionError as exc:
            delay = backoff.next()
            log.warning("%s; retrying in %.1f s", exc, delay)
            stop.wait(delay)
    return None


def run_collector(
    settings: Settings, stop: threading.Event, observer: Observer | None = None
) -> Counters:
    """Load ``--models`` if given, then drain the queue until ``stop`` is set; returns what the
    collector did."""
    declared = prepare_models(settings.models, settings.db_url) if settings.models else None
    client = connect(settings.redis_url, stop)
    if client is None:
        return Counters()
    collector = Collector(settings, client=client, declared=declared, observer=observer)
    collector.run(stop)
    return collector.counters


@click.command()
@redis_options
@db_option
@daemon_options
@click.option(
    "--metrics-port",
    envvar="COLLECTOR_METRICS_PORT",
    callback=port_value("--metrics-port"),
    show_envvar=True,
    default=None,
    help="Serve Prometheus metrics at http://BIND:PORT/metrics (0: a free port, logged).",
)
@click.option(
    "--metrics-bind", default="0.0.0.0", show_default=True, help="Address the metrics listen on."
)
def run(verbose: bool, metrics_port: int | None, metrics_bind: str, **options: object) -> None:
    """Drain the queue into the database until SIGTERM or Ctrl-C.

    \b
    Examples:
      collector run --db-url sqlite:///results.db --batch-size 5000
      collector run --models define_data.py
      collector run --metrics-port 9464
    """
    logs.configure(verbose)
    settings = Settings.from_env(**options)
    stop = threading.Event()
    install_signal_handlers(stop)
    if metrics_port is None:
        run_collector(settings, stop)
        return
    from collector.metrics import Metrics  # prometheus-client only when metrics are asked for

    client = connect(settings.redis_url, stop)  # scrapes come from their own thread
    if client is None:
        return
    metrics = Metrics(client, settings.queue, settings.shards)
    port = metrics.serve(metrics_port, metrics_bind)
    log.info("metrics at http://%s:%d/metrics", metrics_bind, port)
    try:
        run_collector(settings, stop, observer=metrics)
    finally:
        metrics.close()
        client.close()
