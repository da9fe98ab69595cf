"""Errors raised on the collector side; each CLI failure class has its own exit code.

CollectorError (workers.errors)   root of every error this project raises
├── NoSuchTable          a table asked for by name does not exist    exit 1
├── ConfigError          a bad setting or flag                       exit 2
├── AlreadyRunning       another collector holds the SQLite file     exit 3
├── DatabaseUnavailable  the database is down, locked or unreachable exit 4 (the daemon retries)
└── BrokerUnavailable    Redis is unreachable                        exit 5 (the daemon retries)
"""

from __future__ import annotations

from workers.errors import CollectorError


class NoSuchTable(CollectorError, LookupError):
    """A table asked for by name (export, read) is not in the database."""

    exit_code = 1


class ConfigError(CollectorError):
    """A setting or flag is invalid."""

    exit_code = 2


class AlreadyRunning(CollectorError):
    """Another collector already writes to this SQLite file."""

    exit_code = 3


class DatabaseUnavailable(CollectorError):
    """The database cannot take the batch now (down, locked); the same batch is retried later."""

    exit_code = 4


class BrokerUnavailable(CollectorError):
    """Redis cannot be reached now; the daemon backs off and reconnects."""

    exit_code = 5


def first_line(exc: BaseException) -> str:
    """A library error's own message, first line, without SQLAlchemy's SQL and parameter dump
    (those may hold a whole batch of values): what log lines, dead letters and the CLI show."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return (text[0] if text else type(orig).__name__)[:300]
