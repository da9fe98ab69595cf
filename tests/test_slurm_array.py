"""README's Slurm array, end to end without Slurm: the sweep declared, its points written to
points.csv, docs/sweeps.md's ``ij.sh`` run by bash as array tasks of array 200 would run it, with
README's ``ij_job.py``; the rows carry Slurm's names of the tasks and the ledger counts them."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from collector.cli import main
from tests.helpers import run_collector

pytestmark = [pytest.mark.redis, pytest.mark.timeout(180)]
ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
ARRAY = 200
TASKS = (0, 5, 131)


def block(page: str, first_line: str, fence: str) -> str:
    """The code block of ``page`` that starts with ``first_line``."""
    blocks = re.findall(rf"```{fence}\n(.*?)```", (ROOT / page).read_text(), re.DOTALL)
    found = [text for text in blocks if text.startswith(first_line)]
    assert len(found) == 1, f"{page} shows no {first_line!r}"
    return found[0]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_documented_array_task_stores_its_point_under_slurms_name(redis_env, tmp_path) -> None:
    db = ["--db-url", redis_env.db_url]
    (tmp_path / "ij_job.py").write_text(block("README.md", "# ij_job.py", "python"))
    (tmp_path / "ij.sh").write_text(block("docs/sweeps.md", "#!/bin/bash\n# ij.sh:", "bash"))
    (declare,) = re.findall(r"^ +collector (sweep declare ij .*)$", README.read_text(), re.M)
    invoke(*shlex.split(declare), *db)  # README's sweep: 44 points x 3 replicates
    invoke("sweep", "missing", "ij", "--format", "csv", "-o", "points.csv", *db)
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    for task in TASKS:
        env = {**os.environ, "PATH": path, "SLURM_JOB_ID": str(ARRAY + 1 + task),
               "SLURM_ARRAY_JOB_ID": str(ARRAY), "SLURM_ARRAY_TASK_ID": str(task)}  # fmt: skip
        done = subprocess.run(["bash", "ij.sh"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
    run_collector(redis_env)

    state = json.loads(invoke("sweep", "status", "ij", "--json", *db))
    assert (state["total"], state["done"], state["failed"], state["missing"]) == (132, 3, 0, 129)
    assert invoke("sweep", "missing", "ij", "--format", "slurm", *db) == "--array=1-4,6-130\n"
    engine = sa.create_engine(redis_env.db_url)
    with engine.connect() as conn:
        query = "SELECT p.idx, r._job FROM _sweep_points p JOIN ij r ON r._id = p.record_id"
        jobs = sorted(tuple(row) for row in conn.execute(sa.text(query)))
    engine.dispose()
    assert jobs == [(task, f"{ARRAY}_{task}") for task in TASKS]
