"""The demo's side of the database: an empty table to start from, a progress bar while rows
arrive, the summary read back through SQL, and the picture of K over I and J."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from tqdm import tqdm

from collector.db import row_count, sqlite_path
from collector.demo.jobs import TABLE
from collector.errors import CommandFailed
from collector.lock import WriterLock
from collector.settings import mask_db_url


def clear_table(engine: sa.Engine, db_url: str) -> None:
    """Drop this demo's table from an earlier run, so the summary counts this run's rows only.
    Under the SQLite writer lock: never while another collector writes to the file."""
    path = sqlite_path(db_url)
    lock = WriterLock(path) if path else None
    if lock:
        lock.acquire()
    try:
        sa.Table(TABLE, sa.MetaData()).drop(engine, checkfirst=True)
    finally:
        if lock:
            lock.release()


def wait_for_rows(engine: sa.Engine, want: int, problem: Callable[[float], str | None]) -> None:
    """A progress bar until the table holds ``want`` rows; ``problem(seconds since the last new
    row)`` returns a reason to give up, or None."""
    count, last_change = 0, time.monotonic()
    with tqdm(total=want, unit="row", desc="stored", dynamic_ncols=True) as bar:
        while count < want:
            time.sleep(0.2)
            reason = problem(time.monotonic() - last_change)
            if reason:
                raise CommandFailed(reason)
            new = row_count(engine, TABLE)
            if new != count:
                bar.update(new - count)
                count, last_change = new, time.monotonic()


def draw(engine: sa.Engine, png: Path, title: str) -> None:
    """A heat map of K over I and J from the stored rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    columns: list[sa.ColumnClause[Any]] = [sa.column(name) for name in ("I", "J", "K")]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*columns).select_from(sa.table(TABLE))).all()
    xs, ys = sorted({r[0] for r in rows}), sorted({r[1] for r in rows})
    grid_k = np.full((len(ys), len(xs)), np.nan)
    for i, j, k in rows:
        grid_k[ys.index(j), xs.index(i)] = k
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    image = ax.imshow(
        grid_k,
        origin="lower",
        aspect="auto",
        cmap="viridis",
        extent=(xs[0], xs[-1], ys[0], ys[-1]),
    )
    fig.colorbar(image, ax=ax, label="K")
    ax.set(xlabel="I", ylabel="J", title=title)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def summary(engine: sa.Engine, db_url: str, points: int, seconds: float) -> None:
    """Rows, time, rate, and a few rows read back through SQL."""
    rows = row_count(engine, TABLE)
    click.echo(
        f"\n{rows} rows for {points} points in {seconds:.1f} s from submit to the last row "
        f"stored ({rows / seconds:.0f} rows/s); table {TABLE!r} in {mask_db_url(db_url)}, "
        "emptied at the start of each demo run"
    )
    k: sa.ColumnClause[Any] = sa.column("K")
    query = sa.select(sa.column("I"), sa.column("J"), k, sa.column("_job"))
    query = query.select_from(sa.table(TABLE)).order_by(k.desc()).limit(3)
    sql = " ".join(str(query.compile(engine, compile_kwargs={"literal_binds": True})).split())
    click.echo(f"  {sql}")
    with engine.connect() as conn:
        for row in conn.execute(query):
            click.echo(f"  I={row.I:<6.3f} J={row.J:<6.3f} K={row.K:+.4f}  job {row._job}")
