"""One translation from the libraries' errors to ours, one exit code per class, and the shared
options refusing a bad URL the same way in every subcommand."""

from __future__ import annotations

import click
import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import exc as sa_exc

from collector.cli import main
from collector.errors import (
    RET_BROKER,
    RET_CONFIG,
    RET_DATABASE,
    RET_FAILED,
    BrokerUnavailable,
    CommandFailed,
    ConfigError,
    DatabaseUnavailable,
    exit_code_of,
    translate,
)
from workers.errors import EmitError

DRIVER_ERROR = sa_exc.OperationalError(
    "INSERT INTO t VALUES (?)", [(1,)], Exception("database is locked\nmore detail")
)


@pytest.mark.parametrize(
    ("raised", "kind", "message", "code"),
    [
        (redis.ConnectionError("Connection refused"), BrokerUnavailable,
         "redis unavailable: Connection refused", RET_BROKER),
        (DRIVER_ERROR, DatabaseUnavailable, "database error: database is locked", RET_DATABASE),
        (ConfigError("bad flag"), ConfigError, "bad flag", RET_CONFIG),
        (CommandFailed("timed out"), CommandFailed, "timed out", RET_FAILED),
        (EmitError("no spool"), EmitError, "no spool", RET_FAILED),
    ],
)  # fmt: skip
def test_translate_gives_our_error_its_message_and_exit_code(raised, kind, message, code) -> None:
    error = translate(raised)
    assert (type(error), str(error), exit_code_of(error)) == (kind, message, code)


def test_translate_refuses_what_is_not_a_library_error() -> None:
    with pytest.raises(TypeError, match="not a library error: KeyError"):
        translate(KeyError("x"))


def paths_with(option: str, group: click.Group = main, path: tuple[str, ...] = ()) -> list:
    """Every subcommand (as its argv path) that takes ``option``."""
    found = []
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):  # the group loads its subcommands when asked
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += paths_with(option, command, (*path, name))
        elif any(option in param.opts for param in command.params):
            found.append((*path, name))
    return found


BAD_URLS = {
    "--redis-url": (
        "http://u:secret@host/0",
        "Error: redis url must start with redis://, rediss://, unix://, redis+cluster:// or "
        "rediss+cluster://: http://u:***@host/0\n",
    ),
    "--db-url": ("not a url", "Error: not a database URL: not a url\n"),
}


@pytest.mark.parametrize(
    ("option", "path"),
    [(option, path) for option in BAD_URLS for path in paths_with(option)],
    ids=lambda value: value if isinstance(value, str) else " ".join(value),
)
def test_every_url_option_refuses_a_bad_url_in_one_line(option, path) -> None:
    value, line = BAD_URLS[option]
    result = CliRunner().invoke(main, [*path, option, value])
    assert (result.exit_code, result.stderr) == (RET_CONFIG, line)


def test_the_shared_options_cover_every_command_that_reaches_redis_or_the_database() -> None:
    assert paths_with("--redis-url") == [
        ("dead", "list"), ("dead", "purge"), ("dead", "retry"), ("emit",), ("run",),
        ("spool", "flush"), ("status",), ("sweep", "missing"), ("sweep", "status"),
        ("sweep", "submit"), ("wait",), ("web",),
    ]  # fmt: skip
    assert paths_with("--db-url") == [
        ("export",), ("run",), ("serve",), ("status",), ("sweep", "declare"), ("sweep", "missing"),
        ("sweep", "plot"), ("sweep", "status"), ("sweep", "submit"), ("wait",), ("web",),
    ]  # fmt: skip
