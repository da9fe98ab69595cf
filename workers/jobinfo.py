"""Who produced a record: host name, process id and the scheduler's job id, if any."""

from __future__ import annotations

import os
import socket
import sys
from functools import cache


@cache
def host_name() -> str:
    """This machine's host name, looked up once per process."""
    return socket.gethostname()


def current_job_id() -> str | None:
    """The RQ job id inside an RQ job, else the batch scheduler's job id, else None.

    RQ is consulted only when the process has already imported it, so plain jobs pay nothing.
    """
    if "rq" in sys.modules:
        from rq import get_current_job

        job = get_current_job()
        if job is not None:
            return str(job.id)
    env = os.environ
    if slurm := env.get("SLURM_JOB_ID"):
        task = env.get("SLURM_ARRAY_TASK_ID")
        return f"{slurm}_{task}" if task else slurm
    return env.get("PBS_JOBID") or env.get("LSB_JOBID") or None
