"""Who produced a record: host, process id, scheduler job id, wall time and peak memory."""

from __future__ import annotations

import logging
import os
import resource
import socket
import sys
import time
from collections.abc import Mapping
from functools import cache

log = logging.getLogger(__name__)


@cache
def host_name() -> str:
    """This machine's host name, looked up once per process."""
    return socket.gethostname()


def current_job_id() -> str | None:
    """The RQ job id inside an RQ job, else the Dask task key inside a Dask task, else the batch
    scheduler's job id, else None.

    RQ and Dask are consulted only when the process has already imported them, so plain jobs pay
    nothing. A Dask worker started by dask-jobqueue runs inside a Slurm or PBS job: the task key
    comes first, as the finer name of what ran.
    """
    if "rq" in sys.modules:
        from rq import get_current_job

        job = get_current_job()
        if job is not None:
            return str(job.id)
    if "distributed" in sys.modules and (key := dask_task_key()) is not None:
        return key
    return scheduler_job_id(os.environ)


def scheduler_job_id(env: Mapping[str, str]) -> str | None:
    """The batch scheduler's own name of the job or task running in ``env``, as its commands
    (squeue, sacct, qstat, bjobs) and log file names show it; None outside one.

    Slurm gives an array task a job id of its own (``SLURM_JOB_ID``), but names it by the
    array's id and the task's index, ``<SLURM_ARRAY_JOB_ID>_<SLURM_ARRAY_TASK_ID>`` (``%A_%a``).
    PBS's ``PBS_JOBID`` is already the name (``1234[5].server`` in an array); LSF names an
    array element ``<LSB_JOBID>[<LSB_JOBINDEX>]`` (index 0: not an array).

    A value that is not UTF-8 text (a byte no scheduler writes) leaves the job unnamed, with
    one warning naming the variable: the job is metadata, never stored altered, and never the
    reason a result is lost.
    """
    if bad := [name for name in SCHEDULER_VARS if name in env and not is_text(env[name])]:
        if (first := bad[0]) not in _warned:
            _warned.add(first)
            log.warning("%s is not UTF-8 text: records from this job have no job name", first)
        return None
    if slurm := slurm_job_name(env):
        return slurm
    if pbs := env.get("PBS_JOBID"):
        return pbs
    if lsf := env.get("LSB_JOBID"):
        index = env.get("LSB_JOBINDEX", "0")
        return f"{lsf}[{index}]" if index not in ("", "0") else lsf
    return None


SCHEDULER_VARS = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "PBS_JOBID",
                  "LSB_JOBID", "LSB_JOBINDEX")  # fmt: skip
_warned: set[str] = set()


def is_text(value: str) -> bool:
    """Whether ``value`` encodes as UTF-8 (one from the environment with a byte that is not
    UTF-8 holds a lone surrogate, which does not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def slurm_job_name(env: Mapping[str, str]) -> str | None:
    """Slurm's name of the job or array task running in ``env`` (``200_0``, ``300``); None
    outside Slurm."""
    if slurm := env.get("SLURM_JOB_ID"):
        array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
        return f"{array}_{task}" if array and task else slurm
    return None


def dask_task_key() -> str | None:
    """The key of the Dask task this thread is running, else None (also outside a worker).

    A Dask worker runs each task in a pool thread with the key in ``thread_state`` for the task's
    duration (and restores it after), so threads of one worker each see their own task's key.
    """
    try:
        from distributed.worker import thread_state
    except ImportError:
        return None
    key = getattr(thread_state, "key", None)
    return None if key is None else str(key)


def _process_age() -> float:
    """Seconds since this process started, from Linux's /proc; 0 elsewhere (then from import)."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            up = float(uptime.read().split()[0])
        return max(0.0, up - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _mark_start() -> None:
    global _started
    _started = time.monotonic() - _process_age()


_started = 0.0
_mark_start()
os.register_at_fork(after_in_child=_mark_start)  # an RQ work horse counts from its fork


def elapsed() -> float:
    """Wall-clock seconds since this process (or the forked job process) started."""
    return time.monotonic() - _started


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
