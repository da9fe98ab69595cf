"""The job scripts of docs/sweeps.md, run as Slurm runs a batch job (tests/slurmstep.py: the
batch shell leading its own process group, srun steps in their own, SIGTERM then SIGKILL after
KillWait): each recipe stores a buffered emitter's records on scancel and on its --signal
warning; Python as a plain child of the shell, or without the handler, loses them."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.helpers import run_collector, wait_until
from tests.slurmstep import SRUN, BatchJob

pytestmark = [pytest.mark.redis, pytest.mark.timeout(180)]
TESTS = Path(__file__).parent
DOCS = TESTS.parent / "docs" / "sweeps.md"
KILL_WAIT = 15.0  # Slurm's default is 30 s; ample for 50 records on a loaded machine
RECORDS = 50
TASK = {"SLURM_JOB_ID": "203", "SLURM_ARRAY_JOB_ID": "200", "SLURM_ARRAY_TASK_ID": "3"}


def documented(name: str) -> str:
    """The job script ``name`` as docs/sweeps.md shows it."""
    blocks = re.findall(r"```bash\n(#!/bin/bash\n.*?)```", DOCS.read_text(), re.DOTALL)
    found = [block for block in blocks if block.startswith(f"#!/bin/bash\n# {name}:")]
    assert len(found) == 1, f"docs/sweeps.md shows no {name}"
    return found[0]


def without_exec(script: str) -> str:
    """The exec recipe with Python left a child of the shell, as job scripts usually have it."""
    assert "\nexec python " in script
    return script.replace("\nexec python ", "\npython ")


@pytest.fixture
def job_dir(tmp_path, redis_env) -> Path:
    """The job's directory, with the task program and a PATH with python and the fake srun."""
    shutil.copy(TESTS / "slurm_job.py", tmp_path / "ij_task.py")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(SRUN)
    (bin_dir / "srun").chmod(0o755)
    return tmp_path


@pytest.fixture
def run_job(job_dir, redis_env, real_redis) -> Iterator:
    """Starts a script as a batch job and waits until its task has buffered its records."""
    started: list[BatchJob] = []

    def start(script: str, **extra: str) -> BatchJob:
        path = job_dir / "job.sh"
        path.write_text(script)
        path_var = f"{job_dir / 'bin'}:{Path(sys.executable).parent}:{os.environ['PATH']}"
        env = {**os.environ, **TASK, **extra, "PATH": path_var}
        job = BatchJob(path, env, job_dir, KILL_WAIT)
        started.append(job)
        wait_until(lambda: (job_dir / "ready").exists(), timeout=60)
        if "srun " in script:
            wait_until(lambda: bool(job.steps()), timeout=10)
        assert real_redis.xlen(redis_env.queue) == 0  # all of it is in the buffer
        return job

    yield start
    for job in started:
        job.kill()


def stored(settings) -> list[tuple[int, str]]:
    """The rows the collector stores from what reached Redis: (step, _job)."""
    run_collector(settings)
    engine = sa.create_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("steps"):
                return []
            return [tuple(r) for r in conn.execute(sa.text("SELECT step, _job FROM steps"))]
    finally:
        engine.dispose()


def warned(job: BatchJob) -> int | None:
    """The script's --signal warning, then the job left to end; if it has not within KillWait,
    the time limit comes (scancel's signals). The batch shell's exit status."""
    job.warn()
    status = job.finish(limit=KILL_WAIT)
    if status is None:
        job.cancel()
        status = job.shell.returncode
    return status


EVERY_RECORD = sorted((step, "200_3") for step in range(RECORDS))


@pytest.mark.parametrize("recipe", ["ij_exec.sh", "ij_srun.sh", "ij_trap.sh"])
@pytest.mark.parametrize("event", ["scancel or time limit", "--signal warning"])
def test_each_documented_recipe_keeps_the_buffer(run_job, redis_env, recipe, event) -> None:
    job = run_job(documented(recipe))
    if event == "--signal warning":
        warned(job)
    else:
        job.cancel()
    assert sorted(stored(redis_env)) == EVERY_RECORD  # under Slurm's name of the task


def test_python_as_a_child_of_the_shell_loses_the_buffer_on_the_batch_signal(
    run_job, redis_env, job_dir
) -> None:
    job = run_job(without_exec(documented("ij_exec.sh")))
    task = int((job_dir / "ready").read_text())
    assert warned(job) == -signal.SIGTERM  # the shell died of it; Python never saw one
    wait_until(lambda: not Path(f"/proc/{task}").exists() or _zombie(task), timeout=10)
    assert stored(redis_env) == []


def test_without_the_handler_the_buffer_is_lost(run_job, redis_env) -> None:
    job = run_job(documented("ij_exec.sh"), NO_HANDLER="1")
    job.cancel()
    assert job.shell.returncode == -signal.SIGTERM
    assert stored(redis_env) == []


def test_the_task_program_installs_the_documented_handler() -> None:
    docs = DOCS.read_text()
    handler = re.search(r"\ndef stop\(signum, frame\):\n(    .*\n)+", docs)
    assert handler is not None
    assert handler.group(0) in (TESTS / "slurm_job.py").read_text()
    assert "signal.signal(signal.SIGTERM, stop)" in docs


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
