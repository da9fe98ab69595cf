"""Options shared by subcommands: where Redis, the database and the queue are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from workers.settings import DEFAULT_QUEUE, DEFAULT_REDIS_URL

F = TypeVar("F", bound=Callable[..., Any])


def redis_options(func: F) -> F:
    """--redis-url and --queue, each also read from its COLLECTOR_* variable."""
    func = click.option(
        "--queue", envvar="COLLECTOR_QUEUE", default=DEFAULT_QUEUE, show_default=True,
        show_envvar=True, help="Redis Stream the records travel on.",
    )(func)  # fmt: skip
    return click.option(
        "--redis-url", envvar="COLLECTOR_REDIS_URL", default=DEFAULT_REDIS_URL,
        show_default=True, show_envvar=True, help="Redis to read from (redis://, rediss://).",
    )(func)  # fmt: skip


def db_option(func: F) -> F:
    """--db-url, also read from COLLECTOR_DB_URL."""
    return click.option(
        "--db-url", envvar="COLLECTOR_DB_URL", default="sqlite:///results.db",
        show_default=True, show_envvar=True, help="SQLAlchemy URL of the database.",
    )(func)  # fmt: skip
