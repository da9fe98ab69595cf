"""``collector sweep plot``: a heat map over two inputs, a line with error bars over one."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
from click.testing import CliRunner

from collector.cli import main
from collector.cli.points import grid_points
from collector.db import make_engine
from collector.errors import RET_CONFIG
from collector.store import Schema, Store
from collector.sweeps import ledger
from workers.keys import param_key
from workers.record import Record


@pytest.fixture
def finished_sweep(sqlite_url) -> str:
    """A 6 x 4 grid with 3 replicates, all done: K = I * J + replicate."""
    engine = make_engine(sqlite_url)
    points = grid_points(["I=0:1:0.2", "J=1,2,4,8"])
    ledger.declare(engine, "ij", "ij", points, 3)
    records = [
        Record(param_key("ij", p, r), "ij", {**p, "replicate": r, "K": p["I"] * p["J"] + r}, 1.0)
        for p in points
        for r in range(3)
    ]
    assert Store(engine, Schema()).write(records) == []
    engine.dispose()
    return sqlite_url


def plot(db_url: str, out: str, *args: str) -> str:
    result = CliRunner().invoke(
        main, ["sweep", "plot", "ij", *args, "-o", out, "--db-url", db_url], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    "axes", [["--x", "I", "--y", "J"], ["--x", "J"], ["--x", "I", "--at", "J=2"]]
)
def test_plot_writes_a_picture(finished_sweep, tmp_path, axes) -> None:
    out = tmp_path / "sweep.png"
    used = 72 if "--at" not in axes else 18
    assert (
        plot(finished_sweep, str(out), *axes, "--value", "K")
        == f"wrote {out} from {used} results\n"
    )
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (500, 700)  # 7 x 5 inches at 100 dpi
    assert np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0).shape[0] > 50
    assert pixels[..., :3].std() > 0.05


def test_plot_refuses_an_unknown_value_column(finished_sweep, tmp_path) -> None:
    result = CliRunner().invoke(
        main,
        ["sweep", "plot", "ij", "--x", "I", "--value", "_error", "-o", str(tmp_path / "p.png"),
         "--db-url", finished_sweep],
    )  # fmt: skip
    assert result.exit_code == RET_CONFIG
    assert result.stderr == "Error: table 'ij' has no output column '_error'\n"
    assert not (tmp_path / "p.png").exists()
