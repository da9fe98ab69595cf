"""``_job`` is the batch scheduler's own name of the task: what squeue, sacct, qstat and bjobs
show, so a row can be looked up and joined with the scheduler's accounting."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers import Emitter
from workers.jobinfo import current_job_id, scheduler_job_id
from workers.record import Record

SCHEDULER_VARS = ("SLURM_", "PBS_", "LSB_")
ids = st.integers(min_value=1, max_value=10**9)
indexes = st.integers(min_value=0, max_value=4_000_000)


@pytest.fixture
def no_scheduler(monkeypatch) -> None:
    """No scheduler variable from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith(SCHEDULER_VARS):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        # Slurm array task 0 of array 200 has job id 201; squeue, sacct and %A_%a say 200_0
        ({"SLURM_JOB_ID": "201", "SLURM_ARRAY_JOB_ID": "200", "SLURM_ARRAY_TASK_ID": "0"},
         "200_0"),
        ({"SLURM_JOB_ID": "200", "SLURM_STEP_ID": "0"}, "200"),  # plain job, inside an srun step
        ({"PBS_JOBID": "1234[5].pbs01", "PBS_ARRAY_INDEX": "5"}, "1234[5].pbs01"),
        ({"PBS_JOBID": "1234.pbs01"}, "1234.pbs01"),
        ({"LSB_JOBID": "300", "LSB_JOBINDEX": "7"}, "300[7]"),
        ({"LSB_JOBID": "300", "LSB_JOBINDEX": "0"}, "300"),  # LSF's index 0: not an array
        ({"LSB_JOBID": "300"}, "300"),
        ({"LSB_JOBID": "300", "LSB_JOBINDEX": ""}, "300"),
        ({"PBS_JOBID": "1234[5].torque01", "PBS_ARRAYID": "5"}, "1234[5].torque01"),  # Torque
        ({"PBS_JOBID": "", "LSB_JOBID": "300"}, "300"),  # an empty variable is no scheduler
        # a task index without the array's id: the task's own job id, which squeue also finds
        ({"SLURM_JOB_ID": "201", "SLURM_ARRAY_TASK_ID": "0"}, "201"),
        ({"SLURM_JOB_ID": "201", "SLURM_ARRAY_JOB_ID": "", "SLURM_ARRAY_TASK_ID": "0"}, "201"),
        # a heterogeneous job: SLURM_JOB_ID is the leader's id, which squeue and sacct take
        ({"SLURM_JOB_ID": "123", "SLURM_HET_SIZE": "2", "SLURM_JOB_ID_HET_GROUP_0": "123",
          "SLURM_JOB_ID_HET_GROUP_1": "124"}, "123"),
        ({}, None),
    ],
)  # fmt: skip
def test_the_job_is_named_as_its_scheduler_names_it(
    env, name, no_scheduler, fake_redis, monkeypatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert scheduler_job_id(env) == name
    assert current_job_id() == name
    assert Emitter(queue="q", client=fake_redis).record({"a": 1}).job == name


@given(array=ids, task=indexes, offset=st.integers(min_value=1, max_value=10**6))
def test_a_slurm_array_task_is_array_id_underscore_index(array, task, offset) -> None:
    env = {
        "SLURM_JOB_ID": str(array + offset),  # the task's own job id, never its name
        "SLURM_ARRAY_JOB_ID": str(array),
        "SLURM_ARRAY_TASK_ID": str(task),
        "SLURM_ARRAY_TASK_COUNT": "40",
    }
    assert scheduler_job_id(env) == f"{array}_{task}"


@given(job=ids, index=indexes)
def test_an_lsf_array_element_is_id_and_bracketed_index(job, index) -> None:
    env = {"LSB_JOBID": str(job), "LSB_JOBINDEX": str(index)}
    assert scheduler_job_id(env) == (f"{job}[{index}]" if index else str(job))


@given(
    job=ids,
    index=st.none() | indexes,
    server=st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
)
def test_a_pbs_job_keeps_its_own_id(job, index, server) -> None:
    name = f"{job}[{index}].{server}" if index is not None else f"{job}.{server}"
    assert scheduler_job_id({"PBS_JOBID": name}) == name


@given(job=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                   min_size=1, max_size=5000))  # fmt: skip
def test_any_job_id_the_environment_can_hold_travels_exactly(job) -> None:
    """Spaces, newlines, any script, any length: stored as the scheduler set it, never altered."""
    assert scheduler_job_id({"SLURM_JOB_ID": job}) == job
    record = Record("r1", "t", {"a": 1}, 1.0, job=job)
    assert Record.decode(record.encode()).job == job
