"""A picture of a sweep: a heat map of one output over two inputs (mean over replicates), or a
line with error bars (standard deviation over replicates) over one input. matplotlib, Agg."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collector.errors import ConfigError
from collector.sweeps.ledger import POINTS, Sweep
from workers.keys import canonical


def sweep_values(
    engine: sa.Engine, sweep: Sweep, value: str, at: Mapping[str, Any] | None = None
) -> list[tuple[dict[str, Any], float]]:
    """(parameters, value) of every successful point, keeping those matching ``at``."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(sweep.table):
            raise ConfigError(f"table {sweep.table!r} does not exist yet: no results to plot")
        target = sa.Table(sweep.table, sa.MetaData(), autoload_with=conn)
        if value not in target.c or value.startswith("_"):
            raise ConfigError(f"table {sweep.table!r} has no output column {value!r}")
        ok = target.c._error.is_(None) if "_error" in target.c else sa.true()
        query = (
            sa.select(POINTS.c.params, target.c[value])
            .join(target, target.c._id == POINTS.c.record_id)
            .where(POINTS.c.sweep == sweep.name, ok, target.c[value].isnot(None))
        )
        rows = conn.execute(query).all()
    wanted = {name: canonical(v) for name, v in (at or {}).items()}
    return [
        (params, float(val))
        for params, val in rows
        if all(canonical(params.get(name)) == v for name, v in wanted.items())
    ]


def _check_axes(sweep: Sweep, *names: str | None) -> None:
    for name in names:
        if name is not None and name not in sweep.params:
            raise ConfigError(
                f"{name!r} is not a parameter of sweep {sweep.name!r}: {', '.join(sweep.params)}"
            )


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def plot_sweep(
    engine: sa.Engine,
    sweep: Sweep,
    out: str | Path,
    *,
    x: str,
    value: str,
    y: str | None = None,
    at: Mapping[str, Any] | None = None,
) -> int:
    """Draw the sweep into ``out`` (PNG, PDF, SVG by suffix); returns how many results it used."""
    _check_axes(sweep, x, y, *(at or {}))
    data = sweep_values(engine, sweep, value, at)
    if not data:
        raise ConfigError(f"sweep {sweep.name!r} has no successful results with {value!r} yet")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install result-collector[data]") from None
    cells: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for params, val in data:
        cells[(params[x],) if y is None else (params[x], params[y])].append(val)
    others = [p for p in sweep.params if p not in {x, y, *(at or {})}]
    over = "replicates" + (f" and {', '.join(others)}" if others else "")
    fig, ax = plt.subplots(figsize=(7, 5), dpi=100)
    try:
        if y is None:
            xs = sorted({k[0] for k in cells}, key=_sort_key)
            means = [statistics.fmean(cells[(v,)]) for v in xs]
            errs = [statistics.pstdev(cells[(v,)]) for v in xs]
            numeric = all(_sort_key(v)[0] == 0 for v in xs)
            positions = xs if numeric else list(range(len(xs)))
            ax.errorbar(positions, means, yerr=errs, marker="o", capsize=3)
            if not numeric:
                ax.set_xticks(*_ticks(xs))
            ax.set_ylabel(f"{value} (mean ± sd over {over})")
        else:
            xs = sorted({k[0] for k in cells}, key=_sort_key)
            ys = sorted({k[1] for k in cells}, key=_sort_key)
            grid = [
                [statistics.fmean(cells[(i, j)]) if (i, j) in cells else float("nan") for i in xs]
                for j in ys
            ]
            image = ax.imshow(grid, origin="lower", aspect="auto", interpolation="nearest")
            fig.colorbar(image, ax=ax, label=f"{value} (mean over {over})")
            ax.set_xticks(*_ticks(xs))
            ax.set_yticks(*_ticks(ys))
            ax.set_ylabel(y)
        ax.set_xlabel(x)
        fixed = "".join(f", {name} = {v}" for name, v in (at or {}).items())
        ax.set_title(f"sweep {sweep.name}: {len(data)} results{fixed}")
        fig.tight_layout()
        fig.savefig(out)
    finally:
        plt.close(fig)
    return len(data)


def _ticks(values: list[Any], most: int = 12) -> tuple[list[int], list[str]]:
    """At most ``most`` evenly spaced tick positions with their labels."""
    step = max(1, -(-len(values) // most))
    positions = list(range(0, len(values), step))
    return positions, [str(values[p]) for p in positions]
