"""The backlog in entries and in time, read-only, for the metrics: what a scrape asks Redis,
of one stream or added up over a sharded queue's streams."""

from __future__ import annotations

from typing import Any, cast

import redis

from collector.stream import GROUP, text
from workers.cluster import is_cluster_client
from workers.names import QueueNames


def lag(client: redis.Redis, queue: str, group: str = GROUP) -> dict[str, Any]:
    """The backlog in entries and in time, read-only, for metrics: stream length (pending
    included), pending entries, the age of the oldest pending and of the oldest entry (by the
    Redis clock, which stamped the ids), and the dead-letter count."""
    seconds, micros = _server_of(client, queue).time()  # the clock that stamped the ids
    pipe = client.pipeline(transaction=False)  # on a cluster, each command to its key's node
    pipe.xlen(queue)
    pipe.xlen(QueueNames.dead(queue))
    pipe.xrange(queue, count=1)
    length, dead, first = pipe.execute()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    pending, oldest_pending = 0, None
    if length:
        try:
            summary: Any = client.xpending(queue, group)
            pending, oldest_pending = int(summary["pending"]), summary["min"]
        except redis.ResponseError as exc:  # no group yet: nothing pending
            if "NOGROUP" not in str(exc):
                raise
    return {
        "backlog": int(length),
        "pending": pending,
        "oldest_pending_age": _age(oldest_pending, now_ms),
        "oldest_age": _age(first[0][0] if first else None, now_ms),
        "dead": int(dead),
    }


def _server_of(client: redis.Redis, key: str) -> redis.Redis:
    """The client of the one server holding ``key``: ``client`` itself, or on a Redis Cluster
    its node's (TIME has no key to route by)."""
    if not is_cluster_client(client):
        return client
    cluster: Any = client
    return cast(redis.Redis, cluster.get_redis_connection(cluster.get_node_from_key(key)))


def total_lag(client: redis.Redis, names: list[str], group: str = GROUP) -> dict[str, Any]:
    """``lag`` over every shard stream in ``names`` (one stream's keys a call, one cluster slot):
    counts added up, ages the oldest of any shard."""
    each = [lag(client, name, group) for name in names]
    return {k: (max if k.endswith("_age") else sum)(one[k] for one in each) for k in each[0]}


def _age(entry_id: bytes | str | None, now_ms: int) -> float:
    """Seconds since Redis made the entry ``entry_id`` (its id starts with the milliseconds)."""
    if entry_id is None:
        return 0.0
    return max(0.0, (now_ms - int(text(entry_id).split("-")[0])) / 1000)
