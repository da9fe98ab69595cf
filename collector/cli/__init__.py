"""The ``collector`` command: a click group whose failures print one line and exit non-zero."""

from __future__ import annotations

from typing import Any

import click

from collector.cli.dead import dead
from collector.cli.emit import emit
from collector.cli.export import export
from collector.cli.failure import one_line_errors
from collector.cli.run import run
from collector.cli.serve import serve
from collector.cli.spool import spool
from collector.cli.status import status
from collector.cli.sweep import sweep
from collector.cli.wait import wait
from collector.cli.web import web


class Group(click.Group):
    """Turns the project's and the libraries' errors into one-line messages with their own exit
    codes (collector.errors names them)."""

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_errors():
            return super().invoke(ctx)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="result-collector")
def main() -> None:
    """Collect cluster job results from a Redis Stream into one database."""


main.add_command(run)
main.add_command(serve)
main.add_command(status)
main.add_command(emit)
main.add_command(wait)
main.add_command(export)
main.add_command(dead)
main.add_command(sweep)
main.add_command(spool)
main.add_command(web)
