"""Whether a collector has been seen on a queue (a consumer in its group on one of its streams,
or its health key), read-only: ``collector wait`` warns when none was, since rows it waits for
arrive only through one."""

from __future__ import annotations

import redis

from collector.queuestats import stream_stats
from collector.shards import known_streams
from workers.cluster import REDIS_ERRORS, client_from_url
from workers.names import QueueNames
from workers.urls import masked


def collector_seen(client: redis.Redis, queue: str) -> bool:
    """True when the queue's health key exists or any of its streams has a consumer."""
    if client.exists(QueueNames(queue).health):
        return True
    return any(stream_stats(client, stream)["consumers"] for stream in known_streams(client, queue))


def unseen_warning(redis_url: str, queue: str) -> str | None:
    """None when a collector was seen on ``queue`` at ``redis_url``; else one line saying none
    was, or that Redis could not be asked and why (password masked)."""
    try:
        client = client_from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        try:
            if collector_seen(client, queue):
                return None
        finally:
            client.close()
    except REDIS_ERRORS as exc:
        return (
            f"warning: cannot ask {masked(redis_url)} whether a collector runs ({exc}); "
            "rows arrive only through one"
        )
    return (
        f"warning: no collector has been seen on queue {queue} at {masked(redis_url)}: rows "
        "arrive only while `collector serve` or `collector run` drains it"
    )
