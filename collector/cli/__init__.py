"""The ``collector`` command: a click group whose failures print one line and exit non-zero.

Subcommands are imported when they are run (click's lazy group pattern), so ``collector emit``
loads redis and the emitter, not SQLAlchemy, the daemon or the web server."""

from __future__ import annotations

import importlib
from typing import Any

import click

from collector.cli.failure import one_line_errors

# Each subcommand: the module and the name of its click command.
SUBCOMMANDS = {
    "dead": ("collector.cli.dead", "dead"),
    "emit": ("collector.cli.emit", "emit"),
    "export": ("collector.cli.export", "export"),
    "run": ("collector.cli.run", "run"),
    "serve": ("collector.cli.serve", "serve"),
    "spool": ("collector.cli.spool", "spool"),
    "status": ("collector.cli.status", "status"),
    "sweep": ("collector.cli.sweep", "sweep"),
    "wait": ("collector.cli.wait", "wait"),
    "web": ("collector.cli.web", "web"),
}


class Group(click.Group):
    """Loads a subcommand's module only when that subcommand is used, and turns the project's
    and the libraries' errors into one-line messages with their own exit codes
    (collector.errors names them)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return super().get_command(ctx, cmd_name)
        module, name = SUBCOMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), name)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}.{name} is not a click command")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_errors():
            return super().invoke(ctx)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="result-collector")
def main() -> None:
    """Collect cluster job results from a Redis Stream into one database."""
