"""``collector run``: the daemon, with warm (first signal) and cold (second signal) shutdown."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

import click

from collector import logs
from collector.cli.options import F, db_option, redis_options
from collector.daemon import Collector
from collector.models import prepare_models
from collector.settings import Settings
from workers.record import Limits


def install_signal_handlers(stop: threading.Event) -> None:
    """First SIGTERM/SIGINT: finish the batch and exit 0. Second: exit at once (records stay
    pending in Redis and are redelivered, so nothing is lost)."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(128 + signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


# The record limits (workers.record.Limits): flag help by field; each flag is --max-..., at least 1,
# defaulting to the field's own default.
LIMIT_HELP = {
    "max_record_bytes": "Larger records are dead-lettered.",
    "max_depth": "Records with values nested deeper are dead-lettered.",
    "max_fields": "Records with more data fields are dead-lettered.",
    "max_str_len": "Records holding a longer string or bytes value are dead-lettered.",
}


def limit_options(func: F) -> F:
    """One flag per field of Limits, in the order of LIMIT_HELP."""
    for name, text in reversed(LIMIT_HELP.items()):
        func = click.option(
            f"--{name.replace('_', '-')}",
            type=click.IntRange(min=1),
            default=getattr(Limits, name),
            show_default=True,
            help=text,
        )(func)
    return func


@click.command()
@redis_options
@db_option
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=Settings.batch_size,
    show_default=True,
    help="Most records per transaction.",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0),
    default=Settings.max_wait,
    show_default=True,
    help="Seconds to wait for records when the queue is empty.",
)
@click.option("--consumer", default=None, help="Consumer name (default: the host name).")
@click.option(
    "--claim-idle",
    type=click.FloatRange(min=0),
    default=Settings.claim_idle,
    show_default=True,
    help="Seconds before another consumer's unacknowledged records are taken over.",
)
@limit_options
@click.option(
    "--models",
    default=None,
    help="Your SQLAlchemy declarative module (import path or .py file): its tables are created "
    "if missing and records for them must match the declared columns.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def run(verbose: bool, **options: object) -> None:
    """Drain the queue into the database until SIGTERM or Ctrl-C.

    \b
    Examples:
      collector run --db-url sqlite:///results.db --batch-size 5000
      collector run --models define_data.py
    """
    logs.configure(verbose)
    settings = Settings.from_env(**options)
    stop = threading.Event()
    install_signal_handlers(stop)
    declared = prepare_models(settings.models, settings.db_url) if settings.models else None
    Collector(settings, declared=declared).run(stop)
