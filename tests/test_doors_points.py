"""Sweep points from any ``--grid`` text or CSV file: a list of points or one ConfigError line,
never another exception, and never a range that fills the memory before it is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.cli.points import MAX_POINTS, csv_points, grid_points
from collector.errors import ConfigError

NUMBER = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e999", "-1e999", "nan", "inf", "0", "1e-308", "9" * 5000, "x", ""]),
)
SPEC = st.one_of(
    st.tuples(NUMBER, NUMBER, NUMBER).map(lambda t: "I=" + ":".join(t)),
    st.lists(NUMBER, min_size=1, max_size=4).map(lambda v: "J=" + ",".join(v)),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(SPEC, min_size=1, max_size=2))
def test_any_grid_is_points_or_one_config_error(specs: list[str]) -> None:
    try:
        points = grid_points(specs)
    except ConfigError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    assert 0 < len(points) <= MAX_POINTS


@pytest.mark.parametrize("spec", ["I=0:1e12:1", "I=0:1e308:1e-308", "I=0:1:1e-300"])
def test_a_huge_range_is_refused_before_it_is_built(spec: str) -> None:
    with pytest.raises(ConfigError, match=f"has more than {MAX_POINTS} values"):
        grid_points([spec])


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(st.text(max_size=80).map(str.encode), st.binary(max_size=80)))
def test_any_csv_file_is_points_or_one_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "points.csv"
    path.write_bytes(data)
    try:
        points = csv_points(path)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(points, list)


def test_a_csv_value_beyond_64_bits_names_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    path.write_text(f"I,J\n1,2\n3,{'9' * 30}\n")
    with pytest.raises(ConfigError) as caught:
        csv_points(path)
    assert str(caught.value) == (
        f"{path} line 3, column J: integer 999999999999...9999 (30 characters) is beyond 64 bits"
    )


@pytest.mark.parametrize("spec", ["I=0:-2:1e-308", "I=0:2:1e-308", "I=0:-1e308:1e-308"])
def test_a_range_whose_step_count_overflows_a_float_is_one_config_error(spec: str) -> None:
    with pytest.raises(ConfigError):
        grid_points([spec])
