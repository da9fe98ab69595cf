"""Options shared by subcommands: where Redis, the database and the queue are, each read from
its COLLECTOR_* variable when the flag is absent (Redis and the queue: then from the connection
file of ``collector serve``) and checked here, once, by the same rules as ``Settings.validate``
(a bad value is a ConfigError: one line, RET_CONFIG)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from collector.errors import BrokerUnavailable, ConfigError
from collector.settings import (
    DEFAULT_DB_URL,
    check_db_url,
    check_queue,
    check_redis_url,
    resolve_db_url,
)
from workers.connection import Found
from workers.identity import not_up, probe
from workers.settings import DEFAULT_QUEUE, DEFAULT_REDIS_URL, resolve, resolve_queue
from workers.shards import MAX_SHARDS

F = TypeVar("F", bound=Callable[..., Any])
REDIS_HELP = "Redis to read from (redis://, rediss://)."
REDIS_DEFAULT = (
    "[default: the connection file of `collector serve` (COLLECTOR_SERVER names it); "
    f"{DEFAULT_REDIS_URL} only when there is no config directory (you never ran serve)]"
)


def _checked(check: Callable[[str], str]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback that runs ``check`` on the option's value (None: not given)."""
    return lambda _ctx, _param, value: value if value is None else check(value)


valid_redis_url = _checked(check_redis_url)
valid_db_url = _checked(check_db_url)


def resolve_redis(
    redis_url: str | None, queue: str | None, *, check: bool = True
) -> tuple[str | None, str]:
    """The Redis URL and queue a command uses, by the emitters' rule (workers.settings.resolve):
    the flag or COLLECTOR_* variable when given (not None); else the connection file's (DESIGN:
    "When COLLECTOR_REDIS_URL is unset ... use that file"); else the defaults. With ``check``,
    a file whose server does not answer, or is not the server the file names, or a config
    directory without the file, is a one-line BrokerUnavailable naming the file. Without it (the
    commands that emit) a file's URL is None: the Emitter resolves it itself, checks every
    connection and follows the file, as a job's does."""
    if redis_url is not None:
        return redis_url, queue or DEFAULT_QUEUE
    try:
        found = resolve()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    queue = resolve_queue(queue, found)
    if not found.from_file:
        return DEFAULT_REDIS_URL, queue
    if not check:
        return None, queue
    if found.url is None:
        assert found.missing is not None
        raise BrokerUnavailable(not_up(found.missing))
    problem = probe(found)  # the URL itself was checked by resolve(), naming the file
    if problem is not None:
        raise BrokerUnavailable(problem)
    return found.url, queue


def _resolving(func: F, *, check: bool) -> F:
    """``func`` called with ``redis_url`` (and ``queue``, when it takes one) resolved."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        url, queue = resolve_redis(kwargs["redis_url"], kwargs.get("queue"), check=check)
        kwargs["redis_url"] = url
        if "queue" in kwargs:
            kwargs["queue"] = queue
        return func(*args, **kwargs)

    return cast(F, wrapper)


def _url_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--redis-url",
        envvar="COLLECTOR_REDIS_URL",
        default=None,
        show_envvar=True,
        callback=valid_redis_url,
        help=f"{help} {REDIS_DEFAULT}",
    )


def redis_url_option(help: str = REDIS_HELP) -> Callable[[F], F]:
    """--redis-url, also read from COLLECTOR_REDIS_URL, else from the connection file."""
    return lambda func: _url_option(help)(_resolving(func, check=True))


def redis_options(func: F, *, check: bool = True) -> F:
    """--redis-url and --queue, each also read from its COLLECTOR_* variable, else from the
    connection file (``check``: its server must answer), else the defaults."""
    func = _resolving(func, check=check)
    func = click.option(
        "--queue",
        envvar="COLLECTOR_QUEUE",
        default=None,
        show_envvar=True,
        callback=_checked(check_queue),
        help=f"Redis Stream the records travel on. [default: the connection file's, else "
        f"{DEFAULT_QUEUE}]",
    )(func)
    return _url_option(REDIS_HELP)(func)


def shards_option(func: F) -> F:
    """--shards, also read from COLLECTOR_SHARDS; absent: what the collector published in
    the queue's count key (workers.names), else 1 (collector.shards.known_shards)."""
    return click.option(
        "--shards",
        envvar="COLLECTOR_SHARDS",
        show_envvar=True,
        type=click.IntRange(min=1, max=MAX_SHARDS),
        default=None,
        help="Streams the queue is spread over. [default: what the collector published, else 1]",
    )(func)


def emitting_redis_options(func: F) -> F:
    """``redis_options`` for commands that emit: a silent server is an outage to spool through,
    as for ``workers.emit``, not an error."""
    return redis_options(func, check=False)


def resolve_db(db_url: str | None) -> str:
    """The database a command reads: ``db_url`` (the flag or COLLECTOR_DB_URL) when given, else
    the one the connection file of ``collector serve`` names, else the default, made absolute
    (collector.settings.resolve_db_url); a bad one from the file is a ConfigError naming it."""
    if db_url is not None:
        return resolve_db_url(db_url, Found(None))
    try:
        found = resolve()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    url = resolve_db_url(None, found)
    if found.db_url is None:
        return url
    try:
        return check_db_url(url)
    except ConfigError as exc:
        raise ConfigError(f"{found.file}: {exc}") from None


def db_option(func: F, *, from_file: bool = True) -> F:
    """--db-url, also read from COLLECTOR_DB_URL, else (``from_file``) from the connection file,
    else the default; the command gets it resolved by ``resolve_db``. Without ``from_file`` (serve,
    which writes that file) it gets None when neither is given: Settings.from_env decides."""
    if from_file:
        inner = func

        @functools.wraps(inner)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs["db_url"] = resolve_db(kwargs["db_url"])
            return inner(*args, **kwargs)

        func = cast(F, wrapper)
    where = "the connection file's, else " if from_file else ""
    return click.option(
        "--db-url",
        envvar="COLLECTOR_DB_URL",
        default=None,
        show_envvar=True,
        callback=valid_db_url,
        help=f"SQLAlchemy URL of the database; a relative SQLite path is made absolute. "
        f"[default: {where}{DEFAULT_DB_URL}]",
    )(func)


def port_value(what: str) -> Callable[[click.Context, click.Parameter, str | None], int | None]:
    """A click callback turning the option's text into a TCP port (0: any free one), or a
    ConfigError naming ``what`` in one line (click's own type errors print a usage block)."""

    def check(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            port = int(value)
        except ValueError:
            port = -1
        if not 0 <= port <= 65535:
            raise ConfigError(f"{what} must be a port number from 0 to 65535, got {value!r}")
        return port

    return check


def output_option(help: str) -> Callable[[F], F]:
    """-o/--output: a file to write instead of standard output."""
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, writable=True),
        default=None,
        help=help,
    )
