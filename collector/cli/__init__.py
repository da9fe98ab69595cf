"""The ``collector`` command: a click group whose failures print one line and exit non-zero."""

from __future__ import annotations

from typing import Any

import click
import redis
from sqlalchemy import exc as sa_exc

from collector.cli.dead import dead
from collector.cli.emit import emit
from collector.cli.export import export
from collector.cli.run import run
from collector.cli.spool import spool
from collector.cli.status import status
from collector.cli.sweep import sweep
from collector.cli.wait import wait
from workers.errors import CollectorError


class Group(click.Group):
    """Turns the project's errors into one-line messages with their own exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CollectorError as exc:
            raise _fail(str(exc), getattr(exc, "exit_code", 1)) from None
        except redis.RedisError as exc:
            raise _fail(f"redis unavailable: {exc}", 5) from None
        except sa_exc.SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) or exc
            first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
            raise _fail(f"database error: {first}", 4) from None


def _fail(message: str, code: int) -> click.exceptions.Exit:
    click.echo(f"Error: {message}", err=True)
    return click.exceptions.Exit(code)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="result-collector")
def main() -> None:
    """Collect cluster job results from a Redis Stream into one database."""


main.add_command(run)
main.add_command(status)
main.add_command(emit)
main.add_command(wait)
main.add_command(export)
main.add_command(dead)
main.add_command(sweep)
main.add_command(spool)
