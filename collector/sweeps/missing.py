"""What is left of a sweep, in the form the next run needs: Slurm array ranges, a CSV of
points, or the failed rows moved aside so that a rerun's result can take their place.

Why move failed rows: a rerun's record has the same parameter key as the failed attempt, and
its success would replace the failed row, losing the failure's record. ``retire_failed`` moves
those rows (error text, job, host, time) to ``_sweep_failures`` in one transaction first; the
point is then missing, its rerun stores normally, and a key has at most one row in the table.
Only a rerun that is really submitted moves them (or a caller told to): a report of what is
left (Slurm ranges, CSV) changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

import sqlalchemy as sa

from collector.sweeps.ledger import FAILURES, POINTS, PointRow, Sweep
from collector.sweeps.progress import FAILED, MISSING, Progress, rows_in

CHUNK = 500
SLURM_MAX_ARRAY_INDEX = 1000  # Slurm's default MaxArraySize is 1001
SLURM_HIGHEST_INDEX = 4_000_000  # the largest MaxArraySize Slurm accepts is 4000001
ARGUMENT_BYTES = 131_072  # Linux's limit on one command-line argument (MAX_ARG_STRLEN)


@dataclass(frozen=True)
class Rerun:
    """What a rerun of a sweep covers: its missing and failed points (index order), and how many
    failed rows were moved to ``_sweep_failures`` to make room for the rerun's results."""

    rows: list[PointRow]
    retired: int

    def slurm_array(self) -> str:
        """The rerun as sbatch's ``--array`` option."""
        return f"--array={array_ranges(row.idx for row in self.rows)}"

    def slurm_notes(self) -> list[str]:
        """What sbatch will refuse in ``slurm_array()``: an index above Slurm's default
        MaxArraySize or above any, a list longer than one command-line argument can be."""
        highest = self.rows[-1].idx if self.rows else 0
        notes = []
        if highest > SLURM_HIGHEST_INDEX:
            notes.append(
                f"indexes above {SLURM_HIGHEST_INDEX} are past Slurm's largest MaxArraySize "
                f"({SLURM_HIGHEST_INDEX + 1})"
            )
        elif highest > SLURM_MAX_ARRAY_INDEX:
            notes.append(f"indexes above {SLURM_MAX_ARRAY_INDEX} need Slurm's MaxArraySize raised")
        if (size := len(self.slurm_array().encode())) >= ARGUMENT_BYTES:
            notes.append(
                f"the --array list is {size} bytes, more than one command-line argument may "
                f"hold ({ARGUMENT_BYTES}): sbatch fails with 'Argument list too long'; rerun "
                "them with --format csv"
            )
        return notes


def prepare_rerun(engine: sa.Engine, state: Progress, *, retire: bool) -> Rerun:
    """The points to run again (missing and failed, not those running), with the failed rows
    retired first when ``retire`` (the caller is about to submit them, or was told to move
    them); the caller enqueues them or prints them for Slurm or as CSV."""
    rows = rows_in(engine, state, MISSING, FAILED)
    failed = set(state.indexes(FAILED))
    retiring = [row for row in rows if row.idx in failed] if retire else []
    return Rerun(rows, retire_failed(engine, state.sweep, retiring))


def array_ranges(indexes: Iterable[int]) -> str:
    """Sorted indexes as a Slurm ``--array`` list: [3, 4, 5, 6, 7, 12] -> ``3-7,12``."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    first = 0
    while first < len(ordered):
        last = first
        while last + 1 < len(ordered) and ordered[last + 1] == ordered[last] + 1:
            last += 1
        low, high = ordered[first], ordered[last]
        parts.append(str(low) if low == high else f"{low}-{high}")
        first = last + 1
    return ",".join(parts)


def write_csv(rows: Sequence[PointRow], params: Sequence[str], out: IO[str]) -> None:
    """The points as CSV: ``index`` (the Slurm array index), ``replicate``, then the parameters."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["index", "replicate", *params])
    for row in rows:
        writer.writerow([row.idx, row.replicate, *(row.params[name] for name in params)])


def retire_failed(engine: sa.Engine, sweep: Sweep, rows: Sequence[PointRow]) -> int:
    """Move the failed result rows of ``rows`` to ``_sweep_failures``; returns how many moved.

    The transaction's first statement writes (INSERT ... SELECT, the table reflected before):
    SQLite then waits its busy timeout for a collector's batch, where a transaction that had
    read first would be refused the write ("database is locked") once that batch committed.
    """
    if not rows:
        return 0
    target = sa.Table(sweep.table, sa.MetaData(), autoload_with=engine)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    keys = [row.record_id for row in rows]
    columns = ["sweep", "idx", "record_id", "error", "job", "host", "ts", "retired"]
    in_sweep = sa.and_(POINTS.c.sweep == sweep.name, POINTS.c.record_id == target.c._id)
    moved = 0
    with engine.begin() as conn:
        for start in range(0, len(keys), CHUNK):
            failed = sa.and_(
                target.c._id.in_(keys[start : start + CHUNK]), target.c._error.isnot(None)
            )
            source = (
                sa.select(
                    sa.literal(sweep.name, FAILURES.c.sweep.type), POINTS.c.idx, target.c._id,
                    target.c._error, *_optional(target), sa.literal(now, FAILURES.c.retired.type),
                )
                .select_from(target.join(POINTS, in_sweep))
                .where(failed)
            )  # fmt: skip
            conn.execute(FAILURES.insert().from_select(columns, source))
            moved += conn.execute(target.delete().where(failed)).rowcount
    return moved


def _optional(target: sa.Table) -> list[sa.ColumnElement]:
    """_job, _host and _ts when the table has them, else NULL in their place."""
    return [target.c[name] if name in target.c else sa.null() for name in ("_job", "_host", "_ts")]
