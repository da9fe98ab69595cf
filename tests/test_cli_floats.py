"""Every float flag of every command (found by walking the click tree, so a new one is covered
without a change here) is a FiniteFloat: nan and the infinities are a usage error, exit 2."""

from __future__ import annotations

import click
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from collector.cli import main
from collector.cli.finite import FiniteFloat
from collector.errors import RET_CONFIG


def float_params(
    group: click.Group = main, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Parameter]]:
    """(argv path, parameter) of every parameter of every command whose type is a float."""
    found = []
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += float_params(command, (*path, name))
        found += [
            ((*path, name), param)
            for param in command.params
            if isinstance(param.type, click.types.FloatParamType)
        ]
    return found


FLOATS = float_params()
NOT_FINITE = st.sampled_from(["nan", "NaN", "-nan", "inf", "+inf", "-inf", "Infinity", "1e999"])


def test_the_walk_finds_the_float_flags_and_each_is_finite() -> None:
    names = {(" ".join(path), param.opts[-1]) for path, param in FLOATS}
    assert {("run", "--max-wait"), ("run", "--claim-idle"), ("wait", "--timeout"),
            ("wait", "--interval"), ("web", "--refresh"), ("sweep status", "--interval"),
            ("serve", "--max-wait")} <= names  # fmt: skip
    plain = [(path, param.name) for path, param in FLOATS if type(param.type) is not FiniteFloat]
    assert plain == []


@given(chosen=st.sampled_from(FLOATS), text=NOT_FINITE)
def test_every_float_flag_refuses_nan_and_infinity_as_a_usage_error(chosen, text: str) -> None:
    path, param = chosen
    option = param.opts[-1]
    result = CliRunner().invoke(main, [*path, option, text])
    assert result.exit_code == RET_CONFIG, result.output
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for {' / '.join(map(repr, param.opts))}: {text} is not a finite "
        "number of seconds"
    )


@given(chosen=st.sampled_from(FLOATS))
def test_a_finite_value_below_the_bound_is_still_refused(chosen) -> None:
    path, param = chosen
    assert isinstance(param.type, FiniteFloat) and param.type.min is not None
    result = CliRunner().invoke(main, [*path, param.opts[-1], "-1"])
    assert result.exit_code == RET_CONFIG
    assert "is not in the range" in result.stderr.splitlines()[-1]
