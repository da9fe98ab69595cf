"""The end of a soak, once every fault is healed and the producers are gone: spools flushed
(``collector spool flush``, as an operator would for killed jobs), the queue drained, then what
Redis, ``collector status --json`` and the collectors' metrics say, against the rows."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgpack
import redis

from scripts.soak.child import options_line
from scripts.soak.databases import Database
from workers import Emitter

PROBE = 40  # records sent once everything is quiet: the metrics must count exactly these
CHILD = [sys.executable, "-m", "scripts.soak.child"]  # a collector command, its URLs on stdin


def streams(client: redis.Redis) -> tuple[list[str], list[str]]:
    """Every stream in the private Redis: the record streams and the dead-letter streams."""
    found = [k.decode() for k in client.scan_iter(count=1000, _type="stream")]
    dead = sorted(k for k in found if k.endswith(":dead"))
    return sorted(set(found) - set(dead)), dead


def backlog(client: redis.Redis) -> tuple[int, int]:
    """Entries and pending entries over every record stream."""
    entries = pending = 0
    for name in streams(client)[0]:
        entries += int(client.xlen(name))
        with contextlib.suppress(redis.ResponseError):  # no group on it (yet)
            pending += int(client.xpending(name, "collector")["pending"])
    return entries, pending


def dead_letters(client: redis.Redis) -> list[tuple[str, str | None, str]]:
    """(record id, its tag, reason) of every dead letter; a whole batch entry gives each of its
    records."""
    out: list[tuple[str, str | None, str]] = []
    for name in streams(client)[1]:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(name)  # type: ignore[assignment]
        for _mid, fields in entries:
            reason = fields.get(b"reason", b"").decode(errors="replace")
            try:
                msg = msgpack.unpackb(fields[b"m"], raw=False, strict_map_key=False,
                                      ext_hook=lambda code, data: None)  # fmt: skip
            except Exception:
                out.append(("(undecodable)", None, reason))
                continue
            if isinstance(msg.get("id"), list):
                out += [(rid, (d or {}).get("tag"), reason)
                        for rid, d in zip(msg["id"], msg.get("d", []), strict=False)]  # fmt: skip
            else:
                out.append((str(msg.get("id")), (msg.get("d") or {}).get("tag"), reason))
    return out


def flush_spools(spool: Path, url: str) -> list[str]:
    """Re-send what killed producers left in the spool; findings if it stays."""
    if not any(spool.glob("*")):
        return []
    proc = subprocess.run([*CHILD, "spool", "flush", str(spool)],
                          input=options_line({"--redis-url": url}),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    left = sorted(p.name for p in spool.glob("*"))
    if proc.returncode != 0 or left:
        return [f"spool not empty after `collector spool flush` (exit {proc.returncode}): "
                f"{left} {proc.stderr.strip()[-300:]}"]  # fmt: skip
    return []


def wait_drained(client: redis.Redis, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            entries, pending = backlog(client)
        except redis.RedisError as exc:
            entries, pending = -1, str(exc)  # type: ignore[assignment]
        if entries == 0 and pending == 0:
            return []
        if time.monotonic() > deadline:
            return [f"queue not drained {timeout:.0f} s after the end: {entries} entries, "
                    f"{pending} pending"]  # fmt: skip
        time.sleep(0.2)


def scrape(port: int) -> dict[str, float]:
    """The metrics of one collector, ``name{labels}`` -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def stored_count(ports: dict[str, int]) -> float:
    return sum(scrape(p).get('collector_records_total{outcome="stored"}', 0.0)
               for p in ports.values())  # fmt: skip


def probe(url: str, queue: str, db: Database, ports: dict[str, int], timeout: float) -> list[str]:
    """Once quiet: PROBE records into a fresh table; the collectors' ``stored`` counters must
    rise by exactly that many, and the table hold exactly that many rows."""
    before = stored_count(ports)
    emitter = Emitter(url, queue)
    emitter.emit_many([{"n": i} for i in range(PROBE)], table="probe")
    emitter.close()
    client = redis.Redis.from_url(url)
    try:
        found = wait_drained(client, timeout)
    finally:
        client.close()
    rows = len(db.read("probe")[1])
    grown = stored_count(ports) - before
    if rows != PROBE or grown != PROBE:
        found.append(f"probe: {PROBE} records sent, {rows} rows, stored counters grew {grown:.0f}")
    return found


def agree(url: str, queue: str, db: Database, ports: dict[str, int],
          shards: int | None) -> list[str]:  # fmt: skip
    """``collector status --json`` and each collector's gauges against Redis and the rows."""
    client = redis.Redis.from_url(url)
    try:
        dead = sum(int(client.xlen(name)) for name in streams(client)[1])
    finally:
        client.close()
    counts = {t: len(db.read(t)[1]) for t in db.tables()}
    argv = [*CHILD, "status", "--json", "--queue", queue]
    if shards:
        argv += ["--shards", str(shards)]
    proc = subprocess.run(argv, input=options_line({"--redis-url": url, "--db-url": db.url}),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    found = []
    try:
        status: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        return [f"status --json exited {proc.returncode}: {proc.stderr.strip()[-300:]}"]
    seen = {"queue": status.get("queue"), "pending": status.get("pending"),
            "dead": status.get("dead"), "tables": status.get("tables")}  # fmt: skip
    wanted = {"queue": 0, "pending": 0, "dead": dead, "tables": counts}
    if seen != wanted:
        found.append(f"status --json says {seen}, the servers hold {wanted}")
    for name, port in ports.items():
        metrics = scrape(port)
        got = {k: metrics.get(f"collector_{k}") for k in
               ("backlog_records", "pending_records", "dead_letters", "up")}  # fmt: skip
        if got != {"backlog_records": 0, "pending_records": 0, "dead_letters": dead, "up": 1}:
            found.append(f"metrics of {name}: {got}, the servers hold 0 queued, {dead} dead")
    return found
