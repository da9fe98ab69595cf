"""The public surface: ``__all__`` of both packages, what ``collector.cli`` loads, and every
subcommand's help (the layering of ``workers`` is tests/test_layering.py)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

import collector
import workers
from collector.cli import main


def test_collector_exports() -> None:
    assert collector.__all__ == ["Collector", "NoSuchTable", "Settings", "load_models", "read"]
    assert all(getattr(collector, name) is not None for name in collector.__all__)


def test_workers_exports() -> None:
    assert workers.__all__ == [
        "CollectorError", "EmitError", "Emitter", "EncodeError",
        "collect", "default_emitter", "emit", "emit_many", "reset",
    ]  # fmt: skip
    assert all(getattr(workers, name) is not None for name in workers.__all__)


def loaded_after(statement: str, modules: list[str]) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_collector_loads_pandas_and_pyarrow_only_when_used() -> None:
    assert loaded_after("import collector.cli", ["pandas", "pyarrow"]) == []


def commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the group loads its subcommands when asked
        command = group.get_command(ctx, name)
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
    return found


@pytest.mark.parametrize("path", commands(main), ids=" ".join)
def test_every_subcommand_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def test_python_dash_m_collector_is_the_console_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "collector", "--help"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("Usage: collector [OPTIONS] COMMAND [ARGS]...")
    for name in ("dead", "emit", "export", "run", "status", "wait"):
        assert f"\n  {name} " in done.stdout
