"""A batch script run as Slurm runs it, as far as signals go, for tests on machines without Slurm.

slurmstepd starts the batch script (bash) as the leader of its own process group, the batch
step; its children (no job control in a script) share the group. Each ``srun`` starts a job step
of its own, whose processes are signalled by their own step daemon: here the fake ``srun`` on
PATH (SRUN) runs its command in a new session and writes its group id to SLURM_STEPS_DIR.

What Slurm does, and the method that does it here:
- ``--signal=B:SIG@N``, N seconds before the limit: SIG to the batch shell only (``warn``);
- ``--signal=SIG@N``: SIG to the processes of every srun step, not the batch shell (``warn``);
- ``scancel`` and the time limit: SIGCONT and SIGTERM to every process of every step, the batch
  shell included, then SIGKILL to what is left after KillWait (``cancel``);
- the batch shell exiting ends the job: SIGKILL to whatever is left of the batch step at once;
  the srun steps get SIGTERM, then SIGKILL after KillWait (``end``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

SIGNAL_OPTION = re.compile(r"^#SBATCH .*--signal=(B:)?([A-Z0-9]+)@([0-9]+)", re.MULTILINE)
SRUN = """#!/bin/bash
# srun, for signals: "$@" runs as a job step of its own (its own process group, signalled by
# its own step daemon), and srun forwards the SIGTERM it gets to it.
setsid "$@" &
step=$!
echo "$step" > "$SLURM_STEPS_DIR/$step"
trap 'kill -TERM "$step" 2>/dev/null' TERM INT
wait "$step"
wait "$step"
"""


class BatchJob:
    """``script`` started as a batch step with ``env`` (plus SLURM_STEPS_DIR), in ``cwd``."""

    def __init__(self, script: Path, env: Mapping[str, str], cwd: Path, kill_wait: float) -> None:
        self.script = script
        self.kill_wait = kill_wait
        self.steps_dir = cwd / "steps"
        self.steps_dir.mkdir(exist_ok=True)
        self.log = cwd / "job.err"
        with self.log.open("w") as err:
            self.shell = subprocess.Popen(
                ["bash", str(script)],
                env={**env, "SLURM_STEPS_DIR": str(self.steps_dir)},
                cwd=cwd,
                start_new_session=True,  # the batch step: bash leads a process group of its own
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def steps(self) -> list[int]:
        """The process groups of the srun steps started so far."""
        return [int(path.name) for path in self.steps_dir.iterdir()]

    def warn(self) -> None:
        """The script's ``#SBATCH --signal``, as Slurm sends it N seconds before the limit."""
        option = SIGNAL_OPTION.search(self.script.read_text())
        assert option is not None, f"{self.script.name} asks for no signal"
        batch_only, number = option.group(1), signal.Signals[f"SIG{option.group(2)}"]
        if batch_only:
            os.kill(self.shell.pid, number)
        else:
            for group in self.steps():
                _killpg(group, number)

    def cancel(self) -> None:
        """``scancel`` or the time limit: SIGTERM to every process of the job, then SIGKILL."""
        for group in (self.shell.pid, *self.steps()):
            _killpg(group, signal.SIGCONT)
            _killpg(group, signal.SIGTERM)
        self.finish(terminate_steps=False)

    def finish(self, *, terminate_steps: bool = True, limit: float | None = None) -> int | None:
        """Wait up to ``limit`` (None: KillWait) for the batch shell; when it has exited, or at
        KillWait, SIGKILL what is left of the batch step, then give each srun step KillWait
        (SIGTERM first when ``terminate_steps``: the job ended under it) before its SIGKILL.
        Returns the shell's exit status (negative: the signal), None if it did not end by
        ``limit`` (then nothing is killed)."""
        try:
            status = self.shell.wait(self.kill_wait if limit is None else limit)
        except subprocess.TimeoutExpired:
            if limit is not None:
                return None
            status = None
        _killpg(self.shell.pid, signal.SIGKILL)
        if status is None:
            status = self.shell.wait(10)
        deadline = time.monotonic() + self.kill_wait
        for group in self.steps():
            if terminate_steps:
                _killpg(group, signal.SIGTERM)
            while _alive(group) and time.monotonic() < deadline:
                time.sleep(0.05)
            _killpg(group, signal.SIGKILL)
        return status

    def kill(self) -> None:
        """SIGKILL to everything left (the test's cleanup)."""
        for group in (self.shell.pid, *self.steps()):
            _killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.shell.wait(10)


def _killpg(group: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


def _alive(group: int) -> bool:
    """True while a process of ``group`` runs (zombies, which nobody may reap here, do not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False
