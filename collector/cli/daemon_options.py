"""The daemon's flags, which ``collector run`` and ``collector serve`` share: batch size, waits,
claims, the record limits, --models, --shards, --arrays, --pipeline and -v (where Redis and the
database are: collector/cli/options.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from collector.cli.finite import FiniteFloat
from collector.settings import Settings
from workers.checks import MAX_DEPTH, Limits
from workers.shards import MAX_SHARDS

F = TypeVar("F", bound=Callable[..., Any])

# The record limits (workers.checks.Limits): each a --max-... flag, at least 1, with the field's
# own default (--max-depth at most MAX_DEPTH).
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
        type=FiniteFloat(min=0),
        default=Settings.max_wait,
        show_default=True,
        help="Seconds to wait for records when the queue is empty.",
    ),
    click.option("--consumer", default=None, help="Consumer name (default: the host name)."),
    click.option(
        "--claim-idle",
        type=FiniteFloat(min=0),
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
            type=click.IntRange(1, MAX_DEPTH if name == "max_depth" else None),
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
    click.option(
        "--pipeline/--no-pipeline",
        default=None,
        help="Read and decode in one process, write to the database in another (two cores: "
        "see docs/performance.md, Pipelined). Env: COLLECTOR_PIPELINE=1.  [default: off]",
    ),
    click.option("-v", "--verbose", is_flag=True, help="Debug logging."),
]


def daemon_options(func: F) -> F:
    """The daemon's flags (batch size, waits, limits, --models, -v): ``run`` and ``serve`` take
    the same ones."""
    for option in reversed(DAEMON_OPTIONS):
        func = option(func)
    return func
