"""The sweep ledger: a sweep's declaration and its points, stored next to the results.

``_sweeps`` holds one row per sweep, ``_sweep_points`` one row per (point, replicate) with the
record id its result will carry, and ``_sweep_failures`` the failed rows moved aside for a rerun.
Their names start with ``_``, so no record can ever target them (table names must start with a
letter) and the collector's auto-schema never writes to them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from tqdm import tqdm

from collector.errors import ConfigError
from workers.checks import IDENTIFIER, is_identifier
from workers.keys import REPLICATE, param_key

Point = dict[str, Any]  # one parameter point: name -> value
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
CHUNK = 5000

# Whatever the results table holds, a failure moved aside keeps exactly: MySQL's TEXT stops at
# 64 KiB and its DATETIME drops the microseconds (the results table has LONGTEXT, DATETIME(6)).
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
EXACT_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
OPTIONS: dict[str, Any] = {"mysql_charset": "utf8mb4"}  # any text, whatever the default

metadata = sa.MetaData()
SWEEPS = sa.Table(
    "_sweeps",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("table_name", sa.String(63), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("replicates", sa.Integer, nullable=False),
    sa.Column("points", sa.Integer, nullable=False),  # distinct parameter points
    sa.Column("params", sa.JSON, nullable=False),  # the parameter names, in declared order
    sa.Column("spec", sa.Text),  # how it was declared: the --grid axes or the CSV file
    sa.Column("func", sa.Text),  # the RQ job function, once submitted
    sa.Column("rq_queue", sa.Text),  # the RQ queue it was submitted on (NULL: on Dask)
    **OPTIONS,
)
POINTS = sa.Table(
    "_sweep_points",
    metadata,
    sa.Column("sweep", sa.String(128), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),  # point * replicates + replicate
    sa.Column("point", sa.Integer, nullable=False),
    sa.Column("replicate", sa.Integer, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("record_id", sa.String(255), nullable=False),  # param_key(table, params, replicate)
    **OPTIONS,
)
FAILURES = sa.Table(
    "_sweep_failures",
    metadata,
    sa.Column("sweep", sa.String(128), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("record_id", sa.String(255), nullable=False),
    sa.Column("error", LONG_TEXT),
    sa.Column("job", LONG_TEXT),
    sa.Column("host", LONG_TEXT),
    sa.Column("ts", EXACT_TIME),  # when the failed attempt emitted its record
    sa.Column("retired", EXACT_TIME, nullable=False),  # when it was moved aside for a rerun
    **OPTIONS,
)


@dataclass(frozen=True)
class Sweep:
    """A declared sweep: ``points`` parameter points, each run ``replicates`` times."""

    name: str
    table: str
    replicates: int
    points: int
    params: list[str]
    created: dt.datetime
    spec: str | None = None
    func: str | None = None
    rq_queue: str | None = None

    @property
    def total(self) -> int:
        """How many results the sweep expects: points times replicates."""
        return self.points * self.replicates


class PointRow(NamedTuple):
    """One (point, replicate) of a sweep and the record id its result carries."""

    idx: int
    point: int
    replicate: int
    params: dict[str, Any]
    record_id: str

    def job_kwargs(self, replicates: int) -> dict[str, Any]:
        """The job's keyword arguments: the parameters, and ``replicate`` if there are several."""
        return {**self.params, REPLICATE: self.replicate} if replicates > 1 else dict(self.params)


def ensure_tables(engine: sa.Engine) -> None:
    """Create the ledger tables if they are missing."""
    metadata.create_all(engine, checkfirst=True)


def plan_points(table: str, points: Sequence[Point], replicates: int) -> list[PointRow]:
    """The ledger rows for ``points`` (checked: same names, no repeats, no ``replicate``)."""
    if not is_identifier(table):
        raise ConfigError(f"bad table name {table!r}: must match {IDENTIFIER.pattern}")
    if replicates < 1:
        raise ConfigError(f"replicates must be at least 1, got {replicates}")
    if not points:
        raise ConfigError("a sweep needs at least one point")
    names = list(points[0])
    if REPLICATE in names:
        raise ConfigError(f"{REPLICATE!r} is the replicate number; name the parameter otherwise")
    rows: list[PointRow] = []
    seen: dict[str, int] = {}
    for number, point in enumerate(points):
        if list(point) != names:
            raise ConfigError(f"point {number} has parameters {list(point)}, expected {names}")
        first = seen.setdefault(param_key(table, point, 0), number)
        if first != number:
            raise ConfigError(f"point {number} repeats point {first}: {point}")
        for rep in range(replicates):
            key = param_key(table, point, rep)
            rows.append(PointRow(number * replicates + rep, number, rep, dict(point), key))
    return rows


def declare(
    engine: sa.Engine,
    name: str,
    table: str,
    points: Sequence[Point],
    replicates: int = 1,
    spec: str | None = None,
    progress: bool = False,
) -> tuple[Sweep, bool]:
    """Store a sweep; returns it and whether it is new. Declaring the same sweep again is a
    no-op; the same name with other points, table or replicates is refused.

    The declared one is looked for before the writing transaction, whose first statement then
    writes: SQLite waits its busy timeout for a collector's batch, where a transaction that had
    read first would be refused the write ("database is locked") once that batch committed.
    """
    if not SWEEP_NAME.fullmatch(name):
        raise ConfigError(f"bad sweep name {name!r}: must match {SWEEP_NAME.pattern}")
    rows = plan_points(table, points, replicates)
    ensure_tables(engine)
    existing = _declared(engine, name, table, rows)
    if existing is not None:
        return existing, False
    try:
        _insert(engine, name, table, points, replicates, spec, rows, progress)
    except sa.exc.IntegrityError:  # declared meanwhile by another command
        if (existing := _declared(engine, name, table, rows)) is None:
            raise
        return existing, False
    return load(engine, name), True


def _declared(engine: sa.Engine, name: str, table: str, rows: list[PointRow]) -> Sweep | None:
    """The sweep ``name`` if it is declared with these rows, None if not declared; ConfigError
    if it is declared otherwise."""
    with engine.connect() as conn:
        existing = _fetch(conn, name)
        if existing is None:
            return None
        stored = conn.scalars(
            sa.select(POINTS.c.record_id).where(POINTS.c.sweep == name).order_by(POINTS.c.idx)
        ).all()
    if existing.table != table or stored != [row.record_id for row in rows]:
        raise ConfigError(
            f"sweep {name!r} already exists with other points, table or replicates "
            f"({existing.points} points x {existing.replicates} into {existing.table!r})"
        )
    return existing


def _insert(
    engine: sa.Engine,
    name: str,
    table: str,
    points: Sequence[Point],
    replicates: int,
    spec: str | None,
    rows: list[PointRow],
    progress: bool,
) -> None:
    """The sweep's row and its points, in one transaction that starts by writing."""
    with engine.begin() as conn:
        created = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        conn.execute(
            SWEEPS.insert().values(
                name=name,
                table_name=table,
                created=created,
                replicates=replicates,
                points=len(points),
                params=list(points[0]),
                spec=spec,
            )
        )
        with tqdm(total=len(rows), unit="point", desc="declare", disable=not progress) as bar:
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start : start + CHUNK]
                conn.execute(POINTS.insert(), [{"sweep": name, **r._asdict()} for r in chunk])
                bar.update(len(chunk))


def load(engine: sa.Engine, name: str) -> Sweep:
    """The sweep called ``name``; ConfigError naming the declared ones when there is none."""
    inspector = sa.inspect(engine)
    if inspector.has_table(SWEEPS.name):
        with engine.connect() as conn:
            sweep = _fetch(conn, name)
            if sweep is not None:
                return sweep
            known = conn.scalars(sa.select(SWEEPS.c.name).order_by(SWEEPS.c.name)).all()
    else:
        known = []
    listed = ", ".join(known) if known else "none yet: collector sweep declare NAME --table T ..."
    raise ConfigError(f"no sweep named {name!r} (declared: {listed})")


def _fetch(conn: sa.Connection, name: str) -> Sweep | None:
    row = conn.execute(sa.select(SWEEPS).where(SWEEPS.c.name == name)).mappings().first()
    if row is None:
        return None
    return Sweep(
        name=row["name"],
        table=row["table_name"],
        replicates=row["replicates"],
        points=row["points"],
        params=list(row["params"]),
        created=row["created"],
        spec=row["spec"],
        func=row["func"],
        rq_queue=row["rq_queue"],
    )


def point_rows(engine: sa.Engine, name: str) -> list[PointRow]:
    """Every (point, replicate) of the sweep, in index order."""
    query = (
        sa.select(
            POINTS.c.idx, POINTS.c.point, POINTS.c.replicate, POINTS.c.params, POINTS.c.record_id
        )
        .where(POINTS.c.sweep == name)
        .order_by(POINTS.c.idx)
    )
    with engine.connect() as conn:
        return [PointRow(*row) for row in conn.execute(query)]


def note_submission(engine: sa.Engine, name: str, func: str, rq_queue: str | None) -> None:
    """Remember the job function and RQ queue (None: submitted to Dask, so no RQ queue runs
    the sweep now), so reruns and status need not be told again."""
    with engine.begin() as conn:
        conn.execute(
            SWEEPS.update().where(SWEEPS.c.name == name).values(func=func, rq_queue=rq_queue)
        )
