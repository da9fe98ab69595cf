"""Parameter points from command-line text (``--grid I=0:1:0.05 --grid J=1,2,4``) or a CSV file:
the sweep commands parse here, ``collector.sweeps`` works on the values."""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from collector.cli.values import parse_value
from collector.errors import ConfigError
from collector.sweeps.ledger import Point
from workers.checks import is_identifier

MAX_POINTS = 10_000_000


def frange(start: float, stop: float, step: float) -> list[float | int]:
    """``start`` to ``stop`` inclusive in steps of ``step``, each value rounded to 12 digits."""
    if step == 0 or not all(map(math.isfinite, (start, stop, step))):
        raise ConfigError(f"bad range {start}:{stop}:{step}: step must be finite and non-zero")
    try:
        span = (stop - start) / step
    except OverflowError:  # 0:-2:1e-308: more steps than a float can count
        span = math.copysign(math.inf, stop - start) * math.copysign(1.0, step)
    if not span < MAX_POINTS:  # before the list is built: 0:1e12:1 must not fill the memory
        raise ConfigError(f"range {start}:{stop}:{step} has more than {MAX_POINTS} values")
    count = math.floor(span + 1e-9) + 1 if span > -1 else 0
    if count < 1:
        raise ConfigError(f"range {start}:{stop}:{step} is empty")
    values = [float(f"{start + i * step:.12g}") for i in range(count)]
    whole = all(isinstance(x, int) for x in (start, stop, step))
    return [int(v) for v in values] if whole else values


def parse_axis(spec: str) -> tuple[str, list[Any]]:
    """``NAME=start:stop:step`` (inclusive) or ``NAME=v1,v2,...`` -> (name, values)."""
    name, sep, body = spec.partition("=")
    name = name.strip()
    if not sep or not body:
        raise ConfigError(f"bad grid {spec!r}: expected NAME=start:stop:step or NAME=v1,v2,...")
    if not is_identifier(name):
        raise ConfigError(f"bad grid name {name!r}: must match [A-Za-z][A-Za-z0-9_]{{0,62}}")
    if ":" in body:
        parts = [parse_value(p) for p in body.split(":")]
        if len(parts) != 3 or not all(isinstance(p, int | float) for p in parts):
            raise ConfigError(f"bad range in {spec!r}: expected three numbers start:stop:step")
        return name, frange(*parts)
    return name, [parse_value(v) for v in body.split(",")]


def grid_points(specs: list[str]) -> list[Point]:
    """The Cartesian product of the axes, the first axis varying slowest."""
    axes = [parse_axis(s) for s in specs]
    names = [n for n, _ in axes]
    if len(set(names)) != len(names):
        raise ConfigError(f"grid names repeat: {', '.join(names)}")
    total = math.prod(len(v) for _, v in axes)
    if total > MAX_POINTS:
        raise ConfigError(f"grid has {total} points, more than {MAX_POINTS}")
    return [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))
    ]


def csv_points(path: str | Path) -> list[Point]:
    """One point per CSV row; the header names the parameters, values parsed like the CLI's.
    A file that cannot be read as UTF-8 CSV is a ConfigError naming it."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            names = reader.fieldnames or []
            bad = [n for n in names if not is_identifier(n)]
            if bad:
                raise ConfigError(f"bad column name(s) in {path}: {', '.join(map(repr, bad))}")
            return [_csv_point(path, reader.line_num, row) for row in reader]
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path} is not a UTF-8 CSV file: {exc}") from None


def _csv_point(path: str | Path, line: int, row: dict[str, str]) -> Point:
    """One CSV row as a point; ConfigError naming the file, line and column of a bad value."""
    point: Point = {}
    for key, text in row.items():
        if key is None or text is None:
            raise ConfigError(f"{path} line {line}: not as many values as the header has names")
        try:
            point[key] = parse_value(text)
        except ConfigError as exc:
            raise ConfigError(f"{path} line {line}, column {key}: {exc}") from None
    return point


def read_points(grids: tuple[str, ...], points: str | None) -> tuple[list[Point], str]:
    """The points from --grid or --points, and how they were given (kept in ``_sweeps.spec``)."""
    if bool(grids) == bool(points):
        raise ConfigError("give either --grid (one or more) or --points, not both")
    if grids:
        return grid_points(list(grids)), " ".join(f"--grid {g}" for g in grids)
    return csv_points(points or ""), f"--points {points}"


def parse_fixed(items: Iterable[str]) -> Point:
    """``--at NAME=VALUE`` items as {name: value}, values parsed like every other CLI value."""
    fixed: Point = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"bad --at {item!r}: expected NAME=VALUE")
        fixed[key] = parse_value(text)
    return fixed
