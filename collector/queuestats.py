"""What ``status`` (and the status page) show of a queue in Redis, read-only: each stream's
backlog, pending entries, consumers and dead letters, added up over a sharded queue's streams,
the failing batches, and whether the server keeps data across a restart."""

from __future__ import annotations

import json
from typing import Any

import redis

from collector.stream import GROUP, text
from workers.names import QueueNames


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
                {"name": text(c["name"]), "pending": int(c["pending"]), "idle_ms": int(c["idle"])}
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
        "failing": {text(name): json.loads(value) for name, value in health.items()},
        "persistence": persistence(client),
    }
    if len(per) > 1:
        keys = ("stream", "queue", "pending", "dead")
        found["shards"] = [{k: one[k] for k in keys} for one in per]
    return found


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
