"""``collector serve --arrays`` (or COLLECTOR_ARRAYS): jobs that find the server through its
connection file alone send arrays, and they land in the one HDF5 file."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

import collector
from faults.servers import wait_for_rows
from faults.test_serve import Serves

pytestmark = pytest.mark.slow

JOB = """
import numpy as np, workers
for i in range(20):
    workers.emit({"i": i, "K": np.arange(12, dtype="<i2").reshape(3, 4) * i}, key=f"r{i}")
"""


@pytest.fixture
def serves(tmp_path: Path) -> Iterator[Serves]:
    helper = Serves(tmp_path)
    yield helper
    helper.kill_all()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_writes_the_jobs_arrays_into_one_file(how, serves: Serves, tmp_path: Path) -> None:
    path = tmp_path / "results.h5"
    if how == "flag":
        serve = serves.start("--arrays", str(path))
    else:
        serve = serves.start(COLLECTOR_ARRAYS=str(path))
    job = serves.run(JOB)
    assert job.returncode == 0, job.err
    wait_for_rows(serves.db_url, {f"r{i}" for i in range(20)}, timeout=60)
    with h5py.File(path, "r", libver="latest", swmr=True) as file:  # while serve writes
        group = file["results/K/i2_3x4"]
        ids = [v.decode() for v in group["_id"][:]]
        assert sorted(ids) == sorted(f"r{i}" for i in range(20))
        for slot, rid in enumerate(ids):
            want = np.arange(12, dtype="<i2").reshape(3, 4) * int(rid[1:])
            assert (group["data"][slot] == want).all()
    assert serve.stop(signal.SIGTERM, timeout=60) == 0
    frame = collector.read("results", serves.db_url, arrays=str(path))
    assert all(k.dtype == np.dtype("<i2") for k in frame["K"])
