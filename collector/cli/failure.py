"""One line on stderr and a named exit code for every error the project or its libraries raise:
the ``collector`` command and the demo both end through here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from collector.errors import exit_code_of, library_errors, translate


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a CollectorError, Redis or SQLAlchemy error into ``Error: ...`` and its exit code."""
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, library_errors()):
            raise
        error = translate(exc)
        click.echo(f"Error: {error}", err=True)
        raise click.exceptions.Exit(exit_code_of(error)) from None
