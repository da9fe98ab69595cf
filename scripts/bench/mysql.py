"""The MariaDB rows of the benchmark: the collector's drain into MariaDB against a ceiling from
library calls only, measured in the same run, as a ratio.

mariadb-executemany: PyMySQL ``executemany`` of ready tuples into the collector's table layout
(a multi-row INSERT, which is PyMySQL's bulk path), one transaction.
mariadb-drain: the whole drain from library calls only: redis-py (hiredis) XREADGROUP of a
batch, ``msgpack.unpackb`` of each record, its tuple, PyMySQL ``executemany`` into that layout,
COMMIT, then XACK + XDEL in one pipeline; one transaction per batch, as the collector commits.
drain mariadb: ``collector run`` over the same backlog; its ratio is to mariadb-drain.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgpack
import pymysql
import redis
import sqlalchemy as sa

from scripts.bench import ceiling, pipeline
from scripts.bench.common import TABLE, fill

if TYPE_CHECKING:
    from scripts.bench.run import Bench

# the layout `collector run` creates on MariaDB for the tutorial's record (SHOW CREATE TABLE)
DDL = f"""CREATE TABLE `{TABLE}` (
  `_id` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL PRIMARY KEY,
  `_ts` DATETIME(6), `_host` LONGTEXT, `_pid` INT, `_job` LONGTEXT, `_elapsed` DOUBLE,
  `_maxrss` BIGINT, `_error` LONGTEXT,
  `I` BIGINT, `J` DOUBLE, `K` DOUBLE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
INSERT = (
    f"INSERT INTO `{TABLE}` (`_id`, `_ts`, `_host`, `_pid`, `_job`, `_elapsed`, `_maxrss`, "  # noqa: S608
    "`_error`, `I`, `J`, `K`) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def case(bench: Bench) -> None:
    """The two ceilings and the collector's drain, each into its own fresh database."""
    n, redis_url, batch = bench.sizes.backlog, bench.args.redis_url, bench.args.batch_size
    with temp_database(bench.args.mysql_url) as url:
        bench.add("ceiling", "mariadb-executemany", lambda: executemany(url, n))
    with temp_database(bench.args.mysql_url) as url:
        bench.add(
            "ceiling", "mariadb-drain", lambda: drain(redis_url, bench.queue(), url, n, batch)
        )
    with temp_database(bench.args.mysql_url) as url:
        bench.add(
            "drain", "mariadb", lambda: pipeline.drain(redis_url, url, bench.queue(), n, batch)
        )
    top, got = bench.rows[-2:]
    got["ratio"] = got["rate"] / top["rate"]


def connect(url: str) -> pymysql.Connection:  # type: ignore[type-arg]
    """A plain PyMySQL connection to the database of SQLAlchemy ``url``, in utf8mb4."""
    parsed = sa.engine.make_url(url)
    return pymysql.connect(
        host=parsed.host or "localhost", port=parsed.port or 3306, user=parsed.username,
        password=parsed.password or "", database=parsed.database, charset="utf8mb4",
    )  # fmt: skip


def executemany(url: str, count: int) -> dict[str, Any]:
    conn = connect(url)
    with conn.cursor() as cur:
        cur.execute(DDL)
    data = ceiling.rows(count)
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.executemany(INSERT, data)
    conn.commit()
    seconds = time.perf_counter() - t0
    conn.close()
    return {"records": count, "seconds": seconds, "rate": count / seconds}


def drain(redis_url: str, queue: str, url: str, count: int, batch: int) -> dict[str, Any]:
    """Fill ``queue`` with ``count`` records (one entry each, as ``emit`` sends them), then take
    them all into MariaDB with library calls alone."""
    fill(redis_url, queue, count, "fill (mariadb drain)")
    client = redis.Redis.from_url(redis_url)
    client.xgroup_create(queue, "ceiling", id="0")
    conn = connect(url)
    with conn.cursor() as cur:
        cur.execute(DDL)
    utc, done = dt.UTC, 0
    t0 = time.perf_counter()
    while True:
        reply: Any = client.xreadgroup("ceiling", "ceiling", {queue: ">"}, count=batch)
        if not reply:
            break
        entries = reply[0][1]
        rows = []
        for _mid, fields in entries:
            m = msgpack.unpackb(fields[b"m"], raw=False, timestamp=3)
            src, d = m["src"], m["d"]
            when = dt.datetime.fromtimestamp(m["ts"], utc).replace(tzinfo=None)
            rows.append(
                (m["id"], when, src["host"], src["pid"], src.get("job"), src.get("elapsed"),
                 src.get("maxrss"), None, d["I"], d["J"], d["K"])
            )  # fmt: skip
        with conn.cursor() as cur:
            cur.executemany(INSERT, rows)
        conn.commit()
        ceiling.ack_and_delete(client, queue, entries)
        done += len(entries)
    seconds = time.perf_counter() - t0
    conn.close()
    client.close()
    return {"records": done, "seconds": seconds, "rate": done / seconds}


@contextlib.contextmanager
def temp_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server of ``admin_url``, dropped on the way out; its URL quotes
    names the standard way (ANSI_QUOTES), as the collector's engine and count_rows do."""
    name = f"rc_bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = connect(admin_url)
    except pymysql.err.OperationalError as exc:
        shown = sa.engine.make_url(admin_url).render_as_string(hide_password=True)
        raise SystemExit(
            f"bench: MariaDB at {shown} is not reachable ({exc.args[-1]}): give --mysql-url, "
            "or leave the mariadb case out of --only"
        ) from None
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        url = sa.engine.make_url(admin_url).set(database=name)
        url = url.update_query_dict({"sql_mode": "ANSI_QUOTES,STRICT_ALL_TABLES"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
