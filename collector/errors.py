"""Errors raised on the collector side, the exit code of each, and the one translation from the
libraries' errors (redis-py, SQLAlchemy) to ours.

CollectorError (workers.errors)   root of every error this project raises
├── CommandFailed        a command ran but could not do what was asked  RET_FAILED
├── NoSuchTable          a table asked for by name does not exist       RET_FAILED
├── ConfigError          a bad setting or flag (workers.errors)         RET_CONFIG
├── AlreadyRunning       another collector holds the SQLite file        RET_ALREADY_RUNNING
├── DatabaseUnavailable  the database is down, locked or refused        RET_DATABASE
│                        (the daemon retries the batch)
├── BrokerUnavailable    Redis is unreachable or refused                RET_BROKER
│                        (the daemon backs off and reconnects)
└── SchedulerUnavailable the Dask scheduler cannot be reached           RET_SCHEDULER
"""

from __future__ import annotations

import sys

from workers.cluster import REDIS_ERRORS
from workers.errors import CollectorError
from workers.errors import ConfigError as ConfigError  # one class on both sides (RET_CONFIG)

# Exit codes, named once: the CLI, the demo and the tests use these names, never the numbers.
RET_OK = 0  # the command did what was asked
RET_FAILED = 1  # it ran, but could not: a timeout, bad input lines, no such table or dead letter
RET_CONFIG = 2  # a bad setting or flag (click's own usage errors exit 2 as well)
RET_ALREADY_RUNNING = 3  # another collector holds the SQLite file
RET_DATABASE = 4  # the database is down, locked or refused the statement
RET_BROKER = 5  # Redis is unreachable or refused the command
RET_SCHEDULER = 6  # the Dask scheduler (sweep submit --dask) cannot be reached


def _sqlalchemy_error() -> type[Exception] | None:
    """SQLAlchemy's root error class once SQLAlchemy is loaded, else None: none of its errors can
    have been raised then, and commands that touch no database (emit) need not import it."""
    module = sys.modules.get("sqlalchemy.exc")
    return None if module is None else module.SQLAlchemyError  # type: ignore[no-any-return]


def library_errors() -> tuple[type[Exception], ...]:
    """What the CLI and the demo turn into one line and an exit code; anything else is a bug and
    keeps its traceback."""
    sa_error = _sqlalchemy_error()
    return (CollectorError, *REDIS_ERRORS, *((sa_error,) if sa_error else ()))


class CommandFailed(CollectorError):
    """A command ran but could not do what was asked (a timeout, bad input, a missing item)."""

    exit_code = RET_FAILED


class NoSuchTable(CollectorError, LookupError):
    """A table asked for by name (export, read) is not in the database."""

    exit_code = RET_FAILED


class AlreadyRunning(CollectorError):
    """Another collector already writes to this SQLite file."""

    exit_code = RET_ALREADY_RUNNING


class DatabaseUnavailable(CollectorError):
    """The database cannot take the batch now (down, locked); the same batch is retried later."""

    exit_code = RET_DATABASE


class BrokerUnavailable(CollectorError):
    """Redis cannot be reached now; the daemon backs off and reconnects."""

    exit_code = RET_BROKER


class SchedulerUnavailable(CollectorError):
    """The Dask scheduler given by address or scheduler file cannot be reached."""

    exit_code = RET_SCHEDULER


def first_line(exc: BaseException) -> str:
    """A library error's own message, first line, without SQLAlchemy's SQL and parameter dump
    (those may hold a whole batch of values): what log lines, dead letters and the CLI show."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return (text[0] if text else type(orig).__name__)[:300]


def translate(exc: BaseException) -> CollectorError:
    """Our error for ``exc``, one of library_errors(): ours as it is, a Redis error as
    BrokerUnavailable, a SQLAlchemy error as DatabaseUnavailable with its first line."""
    if isinstance(exc, CollectorError):
        return exc
    if isinstance(exc, REDIS_ERRORS):
        return BrokerUnavailable(f"redis unavailable: {exc}")
    sa_error = _sqlalchemy_error()
    if sa_error is not None and isinstance(exc, sa_error):
        return DatabaseUnavailable(f"database error: {first_line(exc)}")
    raise TypeError(f"not a library error: {type(exc).__name__}") from exc


def exit_code_of(error: CollectorError) -> int:
    """The exit code for ``error``: its class's, else RET_FAILED (the node side's errors)."""
    return int(getattr(error, "exit_code", RET_FAILED))
