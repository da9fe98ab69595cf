"""README's arrays section, run as written: the tutorial's ``(I, J) -> K`` with K an array,
collected into one HDF5 file, then read with h5py alone and with ``collector.read``."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import collector
from collector.daemon import Collector
from tests.helpers import REAL_REDIS_URL, drain

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def block(containing: str) -> str:
    """The one Python block of README that contains ``containing``."""
    (found,) = [b for b in BLOCK.findall(README.read_text()) if containing in b]
    return found


@pytest.mark.redis
def test_the_readme_arrays_section_runs_as_written(
    real_redis, settings, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("COLLECTOR_REDIS_URL", REAL_REDIS_URL)
    monkeypatch.setenv("COLLECTOR_QUEUE", settings.queue)
    monkeypatch.setenv("COLLECTOR_DB_URL", settings.db_url)
    job: dict = {}
    exec(block('@collect(table="spectra"'), job)
    points = [(i / 10, j) for i in range(4) for j in (1, 2, 4)]
    sent = {(i, j): job["op"](i, j)["K"] for i, j in points}
    daemon = Collector(replace(settings, arrays=str(tmp_path / "results.h5")), client=real_redis)
    daemon.start()
    drain(daemon)
    daemon.close()
    import workers

    workers.reset()  # the job's default emitter, closed
    reading: dict = {"collector": collector}
    exec(block("h5py.File("), reading)  # in tmp_path, the test's cwd: results.h5
    frame, named = reading["frame"], reading["K"]
    assert len(frame) == len(points) and set(named) == set(frame["_id"])
    for i, j, rid, got in zip(frame["I"], frame["J"], frame["_id"], frame["K"], strict=True):
        want = sent[(i, j)]
        assert got.dtype == np.float32 and got.shape == (3, 40) and (got == want).all()
        assert named[rid].tobytes() == want.tobytes()
