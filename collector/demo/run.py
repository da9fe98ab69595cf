"""The demo command: a sweep of the tutorial's example (I, J -> K) through RQ workers into one
database. It finds or starts a Redis, starts ``collector run``, enqueues one RQ job per point, runs
``rq worker --burst`` processes, shows the rows arriving, stops the collector with SIGTERM,
prints a summary and draws K over I and J. Everything it starts, it stops (also on Ctrl-C).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import click
import redis
import sqlalchemy as sa

from collector.cli.failure import one_line_errors
from collector.cli.options import valid_db_url
from collector.demo.broker import find_redis
from collector.demo.processes import start, stop, tail, tool
from collector.demo.results import clear_table, draw, summary, wait_for_rows
from collector.errors import CommandFailed
from collector.settings import DEFAULT_DB_URL, mask_db_url
from collector.sweeps.submit import enqueue_points

JOB = "collector.demo.jobs.op"
AXIS = (0.0, 4.0)  # I and J both run over this interval
STALL_SECONDS = 60.0  # no new row for this long, and the workers are gone: give up
WORKER_CLASS = "rq.worker.SimpleWorker"  # demo jobs take a millisecond: no fork per job


def grid(points: int) -> list[dict[str, float]]:
    """Exactly ``points`` points on the most nearly square I x J grid over AXIS."""
    rows = max(d for d in range(1, math.isqrt(points) + 1) if points % d == 0)
    cols = points // rows

    def axis(n: int) -> list[float]:
        lo, hi = AXIS
        return [round(lo + (hi - lo) * k / max(n - 1, 1), 12) for k in range(n)]

    return [{"I": i, "J": j} for i in axis(cols) for j in axis(rows)]


# --- the command --------------------------------------------------------------------------------


@click.command()
@click.option(
    "--points",
    type=click.IntRange(min=1, max=1_000_000),
    default=3000,
    show_default=True,
    help="Points in the sweep (an I x J grid).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    default=4,
    show_default=True,
    help="rq worker processes.",
)
@click.option(
    "--db-url",
    default=DEFAULT_DB_URL,
    show_default=True,
    callback=valid_db_url,
    help="Where the collector stores the rows.",
)
@click.option(
    "--png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("demo.png"),
    show_default=True,
    help="The picture to write.",
)
@click.option(
    "--redis",
    "redis_choice",
    type=click.Choice(["auto", "server"]),
    default="auto",
    show_default=True,
    help="auto: COLLECTOR_REDIS_URL if it answers, else a private redis-server (the one on PATH "
    "if >= 6.2, else the one of the server extra); server: always that private one.",
)
def main(points: int, workers: int, db_url: str, png: Path, redis_choice: str) -> None:
    """Run a sweep of POINTS jobs (I, J -> K) through RQ workers into the database and draw it.

    \b
    Example:
      scripts/demo                 # 3000 points into ./results.db, picture in ./demo.png
      scripts/demo --points 200    # a quick one
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    with one_line_errors():
        demo(points, workers, db_url, png, redis_choice)


def demo(points: int, workers: int, db_url: str, png: Path, redis_choice: str) -> None:
    """Everything ``main`` promises, each process stopped on the way out, however it ends."""
    with ExitStack() as stack:  # closed in reverse: processes first, the temp dir last
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="collector-demo-")))
        engine = sa.create_engine(db_url)
        stack.callback(engine.dispose)
        url, how = find_redis(stack, redis_choice, workdir)
        click.echo(f"redis: {how}")
        run_sweep(stack, workdir, engine, url, db_url, points, workers)
        draw(engine, png, f"K over I and J: {points} rows from {mask_db_url(db_url)}")
        click.echo(f"picture: {png.resolve()}")


def run_sweep(
    stack: ExitStack,
    workdir: Path,
    engine: sa.Engine,
    url: str,
    db_url: str,
    points: int,
    workers: int,
) -> None:
    """Collector, sweep, workers, progress bar, SIGTERM to the collector, summary."""
    run = uuid.uuid4().hex[:8]
    queue, rq_queue = f"demo:{run}:results", f"demo-{run}"
    clear_table(engine, db_url)
    env = {**os.environ, "COLLECTOR_REDIS_URL": url, "COLLECTOR_QUEUE": queue}
    collector_log = workdir / "collector.log"
    collector = start(
        stack,
        [tool("collector"), "run", "--db-url", db_url, "--max-wait", "0.2"],
        collector_log,
        env,
    )
    client = redis.Redis.from_url(url)
    stack.callback(client.close)
    if url == os.environ.get("COLLECTOR_REDIS_URL"):  # not ours: leave nothing behind
        stack.callback(forget_keys, client, queue, rq_queue)

    began = time.monotonic()
    enqueue_points(JOB, grid(points), connection=client, queue=rq_queue, progress=True)
    cmd = [tool("rq"), "worker", rq_queue, "--burst", "--url", url, "-w", WORKER_CLASS]
    logs = [workdir / f"worker{n}.log" for n in range(workers)]
    procs = [start(stack, cmd, log, env) for log in logs]

    def problem(idle: float) -> str | None:
        if collector.poll() is not None:
            return f"collector run exited with {collector.returncode}:\n{tail(collector_log)}"
        if idle > STALL_SECONDS and all(p.poll() is not None for p in procs):
            return f"the workers are done but rows stopped arriving; worker log:\n{tail(logs[0])}"
        return None

    wait_for_rows(engine, points, problem)
    seconds = time.monotonic() - began
    code = stop(collector, timeout=30)
    if code != 0:
        raise CommandFailed(f"collector run exited with {code} after SIGTERM")
    summary(engine, db_url, points, seconds)


def forget_keys(client: redis.Redis, queue: str, rq_queue: str) -> None:
    """On a Redis the demo did not start: delete the demo's stream and RQ keys afterwards."""
    keys = [*client.scan_iter(match=f"{queue}*"), *client.scan_iter(match=f"rq:*:{rq_queue}")]
    if keys:
        client.delete(*keys)
    client.srem("rq:queues", f"rq:queue:{rq_queue}")
