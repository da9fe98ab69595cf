"""Slurm's accounting of a sweep's points: ``sacct``'s state, exit code, elapsed time and peak
memory joined to each point through its row's ``_job``, which is Slurm's name of the task.

The job's own line (``200_0``) gives the state, exit code and elapsed time; MaxRSS is measured
per step (``200_0.batch``, ``200_0.0``, ``200_0.extern``), so a point gets its largest step's
(a heterogeneous job ``400``: its leader ``400+0``'s line, the largest step of any component).
Only names that look like Slurm's (digits, ``_`` and an index) reach sacct's command line.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO

import sqlalchemy as sa

from collector.errors import CommandFailed
from collector.sweeps.ledger import POINTS, PointRow, Sweep, point_rows

FIELDS = ("State", "ExitCode", "Elapsed", "MaxRSS")
SLURM_NAME = re.compile(r"([0-9]{1,20})(?:_[0-9]{1,10})?")  # a job, or an array task %A_%a
SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([KMGTP]?)")
CHUNK = 200  # job ids per sacct call, to keep its command line short
Runner = Callable[[list[str]], str]


def sacct_command() -> str:
    """The path of ``sacct``; CommandFailed in one line where Slurm's accounting is absent."""
    found = shutil.which("sacct")
    if found is None:
        raise CommandFailed("sacct is not on PATH: no Slurm accounting on this machine")
    return found


def point_jobs(engine: sa.Engine, sweep: Sweep) -> list[tuple[PointRow, str | None]]:
    """Every (point, replicate) with the ``_job`` of its row (None: no row, or no _job)."""
    rows = point_rows(engine, sweep.name)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(sweep.table):
            return [(row, None) for row in rows]
        target = sa.Table(sweep.table, sa.MetaData(), autoload_with=conn)
        if "_job" not in target.c:
            return [(row, None) for row in rows]
        query = (
            sa.select(POINTS.c.idx, target.c._job)
            .select_from(POINTS.join(target, target.c._id == POINTS.c.record_id))
            .where(POINTS.c.sweep == sweep.name)
        )
        jobs = {idx: job for idx, job in conn.execute(query)}
    return [(row, jobs.get(row.idx)) for row in rows]


def run_sacct(sacct: str) -> Runner:
    """A runner of ``sacct`` with the given arguments; its output, or CommandFailed."""

    def run(args: list[str]) -> str:
        try:
            done = subprocess.run(  # our path and checked arguments, no shell
                [sacct, *args],
                capture_output=True,
                text=True,
                errors="replace",  # a message in another locale's bytes is still one line
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CommandFailed(f"sacct failed: {exc}") from None
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
            raise CommandFailed(f"sacct failed: {why}")
        return done.stdout

    return run


def slurm_names(jobs: Iterable[str | None]) -> set[str]:
    """The ``jobs`` that have the form of Slurm's names, the only ones sacct is asked about."""
    return {job for job in jobs if job is not None and SLURM_NAME.fullmatch(job)}


def sacct_fields(jobs: Iterable[str | None], run: Runner) -> dict[str, dict[str, str]]:
    """sacct's FIELDS for each of ``jobs`` that is a Slurm name and that sacct knows."""
    wanted = slurm_names(jobs)
    allocations = sorted({job.partition("_")[0] for job in wanted}, key=int)
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(allocations), CHUNK):
        chunk = ",".join(allocations[start : start + CHUNK])
        fmt = ",".join(("JobID", *FIELDS))
        out = run([f"--jobs={chunk}", f"--format={fmt}", "--parsable2", "--noheader"])
        _merge(found, out.splitlines())
    return {job: fields for job, fields in found.items() if job in wanted}


def _merge(found: dict[str, dict[str, str]], lines: Sequence[str]) -> None:
    """sacct's lines into ``found``: the job's line for its fields, its steps for MaxRSS.

    A heterogeneous job is named by its leader's id (``400``, its SLURM_JOB_ID), which sacct
    lists as components ``400+0``, ``400+1``: the leader's line, which ran the batch script,
    gives the fields, and the steps of every component MaxRSS.
    """
    for line in lines:
        parts = line.split("|")
        if len(parts) != 1 + len(FIELDS):
            continue
        name, step = parts[0].partition(".")[::2]
        job_id, component = name.partition("+")[::2]
        fields = found.setdefault(job_id, dict.fromkeys(FIELDS, ""))
        values = dict(zip(FIELDS, parts[1:], strict=True))
        if not step and component in ("", "0"):
            fields.update({k: v for k, v in values.items() if k != "MaxRSS"})
        if size_of(values["MaxRSS"]) > size_of(fields["MaxRSS"]):
            fields["MaxRSS"] = values["MaxRSS"]


def size_of(text: str) -> float:
    """A sacct size (``1234K``, ``2.5G``, ``0``) in bytes; -1 for an empty or unknown one."""
    match = SIZE.fullmatch(text.strip())
    if match is None:
        return -1.0
    return float(match.group(1)) * 1024 ** " KMGTP".index(match.group(2) or " ")


def write_accounting(
    points: Sequence[tuple[PointRow, str | None]],
    fields: Mapping[str, Mapping[str, str]],
    params: Sequence[str],
    out: IO[str],
) -> None:
    """One CSV line a point: index, replicate, the parameters, _job, then sacct's FIELDS."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["index", "replicate", *params, "_job", *FIELDS])
    for row, job in points:
        known = fields.get(job or "", {})
        writer.writerow(
            [
                row.idx,
                row.replicate,
                *(row.params[name] for name in params),
                job or "",
                *(known.get(name, "") for name in FIELDS),
            ]
        )
