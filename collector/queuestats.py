"""What ``status`` (and the status page) show of a queue in Redis, read-only: each stream's
backlog, pending entries, consumers and dead letters, added up over a sharded queue's streams,
the failing batches, and whether the server keeps data across a restart."""

from __future__ import annotations

import json
import math
from typing import Any

import redis

from collector.stream import GROUP
from workers.names import QueueNames

MAX_ERROR_CHARS = 300  # a failing batch's error as shown: one line, cut


def stream_stats(client: redis.Redis, stream: str, group: str = GROUP) -> dict[str, Any]:
    """One stream's length, pending count, consumers and dead-letter count."""
    pipe = client.pipeline(transaction=False)
    pipe.xlen(stream)
    pipe.xlen(QueueNames.dead(stream))
    pipe.exists(stream)
    length, dead, exists = pipe.execute()
    pending, consumers = 0, []
    if exists:
        try:
            summary: Any = client.xpending(stream, group)
            pending = int(summary["pending"])
            info: Any = client.xinfo_consumers(stream, group)
            consumers = [
                {"name": shown(c["name"]), "pending": int(c["pending"]), "idle_ms": int(c["idle"])}
                for c in info
            ]
        except redis.ResponseError as exc:  # no group yet: nothing pending
            if "NOGROUP" not in str(exc):
                raise
    return {"queue": int(length), "pending": pending, "dead": int(dead), "consumers": consumers}


def queue_stats(
    client: redis.Redis, names: QueueNames, streams: list[str], group: str = GROUP
) -> dict[str, Any]:
    """The figures ``status`` shows for the queue read from ``streams``: totals, consumers
    (their pending entries added up), failing batches, persistence and, with more than one
    stream, ``shards``: each stream's own backlog, pending entries and dead letters."""
    per = [{"stream": stream, **stream_stats(client, stream, group)} for stream in streams]
    consumers: dict[str, dict[str, Any]] = {}
    for one in per:
        for c in one["consumers"]:
            seen = consumers.setdefault(c["name"], {**c, "pending": 0})
            seen["pending"] += c["pending"]
            seen["idle_ms"] = min(seen["idle_ms"], c["idle_ms"])
    health: Any = client.hgetall(names.health)
    found: dict[str, Any] = {
        "queue": sum(one["queue"] for one in per),
        "pending": sum(one["pending"] for one in per),
        "dead": sum(one["dead"] for one in per),
        "consumers": list(consumers.values()),
        "failing": {shown(name): failing_entry(value) for name, value in health.items()},
        "persistence": persistence(client),
    }
    if len(per) > 1:
        keys = ("stream", "queue", "pending", "dead")
        found["shards"] = [{k: one[k] for k in keys} for one in per]
    return found


def shown(name: bytes | str) -> str:
    """A name or message from Redis as one printable line: anyone who can write to Redis can
    write these, so invalid UTF-8 and terminal escapes are shown escaped, never acted on."""
    text = name.decode(errors="backslashreplace") if isinstance(name, bytes) else name
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def failing_entry(raw: bytes | str) -> dict[str, Any]:
    """A health hash value (collector.stream.report_health writes JSON ``{since, attempts,
    error}``) as those three fields, strict JSON whatever is stored: ``since`` a finite float
    or None, ``attempts`` an int or None, ``error`` one printable line of bounded length."""
    try:
        found = json.loads(raw)
    except (ValueError, RecursionError):
        found = None
    if not isinstance(found, dict):
        return {
            "since": None,
            "attempts": None,
            "error": _cut(f"unreadable health entry: {raw[:MAX_ERROR_CHARS]!r}"),
        }
    error = found.get("error")
    return {
        "since": _seconds(found.get("since")),
        "attempts": found["attempts"] if type(found.get("attempts")) is int else None,
        "error": _cut(
            error if isinstance(error, str) else f"unreadable error: {error!r:.{MAX_ERROR_CHARS}}"
        ),
    }


def _seconds(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is no number (or no finite one)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def _cut(text: str) -> str:
    """``text`` as one printable line of at most MAX_ERROR_CHARS characters."""
    line = shown(text[: MAX_ERROR_CHARS * 2])
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


def persistence(client: redis.Redis) -> dict[str, Any]:
    """How the server keeps data across a restart: AOF, RDB snapshots, or nothing (``None``
    where the server does not say, e.g. CONFIG is not allowed for this user)."""
    info: Any = client.info("persistence")
    aof = bool(int(info.get("aof_enabled", 0)))
    try:
        save: Any = client.config_get("save").get("save")
        rdb: bool | None = bool(save and str(save).strip())
    except redis.ResponseError:
        rdb = None
    return {"aof": aof, "rdb": rdb, "survives_restart": aof or rdb}
