"""The README's main command, run for real on a small sweep: exit code, summary, rows, picture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import sqlalchemy as sa

from collector.demo.run import grid
from collector.errors import RET_ALREADY_RUNNING
from collector.lock import WriterLock
from collector.server.binary import bundled_path
from tests.helpers import REAL_REDIS_URL
from workers.jobinfo import host_name

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo"


def run_demo(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def demo_rows(cwd: Path) -> list[tuple[float, float, float]]:
    engine = sa.create_engine(f"sqlite:///{cwd / 'results.db'}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text('SELECT "I", "J", "K" FROM demo'))]
    finally:
        engine.dispose()


def assert_picture(path: Path) -> None:
    """A PNG of the figure's size whose pixels are not all one colour."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (520, 640)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50


def test_grid_has_exactly_the_points_asked_for_on_a_near_square_grid():
    points = grid(200)
    assert len(points) == 200
    assert len({p["I"] for p in points}) == 20 and len({p["J"] for p in points}) == 10
    assert (points[0], points[-1]) == ({"I": 0.0, "J": 0.0}, {"I": 4.0, "J": 4.0})
    assert len(grid(7)) == 7


@pytest.mark.slow
def test_demo_script_then_a_rerun_on_the_bundled_redis_count_only_their_own_rows(tmp_path):
    first = run_demo([str(DEMO), "--points", "200", "--workers", "2"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "200 rows for 200 points" in first.stdout
    assert f"picture: {tmp_path / 'demo.png'}" in first.stdout
    assert_picture(tmp_path / "demo.png")
    rows = demo_rows(tmp_path)
    assert len(rows) == 200
    assert {(i, j) for i, j, _ in rows} == {(p["I"], p["J"]) for p in grid(200)}

    # Again in the same directory, with no redis-server on the PATH: the server extra's.
    cmd = [sys.executable, "-m", "collector.demo", "--points", "120", "--png", "again.png"]
    second = run_demo(cmd, tmp_path, PATH=str(tmp_path / "empty"))
    assert second.returncode == 0, second.stderr
    assert "redis: a private redis-server 6.2." in second.stdout
    assert f"(bundled: {bundled_path()}) on redis://127.0.0.1:" in second.stdout
    assert "120 rows for 120 points" in second.stdout
    assert len(demo_rows(tmp_path)) == 120
    assert_picture(tmp_path / "again.png")


@pytest.mark.redis
@pytest.mark.slow
def test_demo_uses_collector_redis_url_and_leaves_no_keys_there(tmp_path, real_redis):
    before = set(real_redis.scan_iter(match="*demo*"))
    cmd = [sys.executable, "-m", "collector.demo", "--points", "60", "--workers", "1"]
    result = run_demo(cmd, tmp_path, COLLECTOR_REDIS_URL=REAL_REDIS_URL)
    assert result.returncode == 0, result.stderr
    assert f"redis: COLLECTOR_REDIS_URL ({REAL_REDIS_URL})" in result.stdout
    assert "60 rows for 60 points" in result.stdout
    assert set(real_redis.scan_iter(match="*demo*")) - before == set()


def test_a_bad_flag_is_one_line_and_exit_2(tmp_path):
    result = run_demo([sys.executable, "-m", "collector.demo", "--points", "0"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for '--points': 0 is not in the range 1<=x<=1000000."
    )
    assert not (tmp_path / "results.db").exists()


def test_a_collector_already_on_the_file_is_a_one_line_error_and_nothing_is_dropped(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'results.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE demo (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO demo VALUES (1)"))
    engine.dispose()
    lock = WriterLock(str(tmp_path / "results.db"))
    lock.acquire()
    try:
        cmd = [sys.executable, "-m", "collector.demo", "--points", "4", "--redis", "server"]
        result = run_demo(cmd, tmp_path)
    finally:
        lock.release()
    assert result.returncode == RET_ALREADY_RUNNING
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: another collector (pid {os.getpid()} on host {host_name()}) already")
    )
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'results.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT x FROM demo")).all() == [(1,)]
    engine.dispose()
