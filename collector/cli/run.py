"""``collector run``: the flags into collector.service, with warm (first signal) and cold (second
signal) shutdown from collector.signals."""

from __future__ import annotations

import threading

import click

from collector import logs, signals
from collector.cli.daemon_options import daemon_options
from collector.cli.options import db_option, port_value, redis_options
from collector.service import run_collector, run_with_metrics
from collector.settings import Settings, check_durable


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
      collector run --pipeline       # reader and writer processes (COLLECTOR_PIPELINE=1)
    """
    logs.configure(verbose)
    settings = Settings.from_env(**options)
    check_durable(settings.db_url)
    stop = threading.Event()
    signals.install(stop)
    if metrics_port is None:
        run_collector(settings, stop)
    else:
        run_with_metrics(settings, stop, metrics_port, metrics_bind)
