"""Shard naming and routing: the one place that knows which stream a record travels on.

With one shard (the default) the queue is the single stream ``<queue>`` with its dead letters in
``<queue>:dead``, exactly as before sharding existed. With N > 1 shards the queue is N streams
``<queue>:{0}`` .. ``<queue>:{N-1}``, each with its dead letters in ``<queue>:{i}:dead``: the
braces are a Redis Cluster hash tag, so a shard's stream and its dead letters share one slot and
every command the collector sends touches one slot only.

A record goes to shard ``crc32(record id) % N``: stable across processes, hosts and Python
versions (``hash()`` is salted per process), so one key always lands on one shard. A batch entry
(wire version 2) goes whole to the shard of its first record.

Emitters learn N from COLLECTOR_SHARDS, else from the key ``<queue>:shards`` that the collector
writes when it starts (read once and cached), else use 1.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Sequence
from typing import Any

import msgpack
import redis

ENV = "COLLECTOR_SHARDS"
log = logging.getLogger(__name__)
MAX_SHARDS = 1024  # far beyond any sensible count: a typo (10000) fails instead of making keys


def parse_shards(text: str | int) -> int:
    """A shard count (an integer from 1 to MAX_SHARDS), else a ValueError saying so."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= MAX_SHARDS:
        raise ValueError(f"{ENV} must be a whole number from 1 to {MAX_SHARDS}, got {text!r}")
    return value


def env_shards() -> int | None:
    """COLLECTOR_SHARDS as a shard count, None when unset (ValueError when malformed)."""
    text = os.environ.get(ENV)
    return parse_shards(text) if text else None


def count_key(queue: str) -> str:
    """The key in which the collector publishes the shard count for emitters."""
    return f"{queue}:shards"


def published(client: redis.Redis, queue: str) -> int | None:
    """The shard count the collector published for ``queue``; None while there is none (no
    collector has started yet); 1 when it is malformed or this user may not read it (an ACL
    user allowed XADD only: such jobs set COLLECTOR_SHARDS instead). An unreachable Redis
    raises, as a send would."""
    try:
        raw: Any = client.get(count_key(queue))
    except redis.ResponseError:  # NOPERM and kin: reading the count is not this user's right
        return 1
    if raw is None:
        return None
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    try:
        return parse_shards(text)
    except ValueError:
        log.warning("ignoring a malformed shard count %r in %s: using 1", text, count_key(queue))
        return 1


def stream_name(queue: str, shards: int, index: int) -> str:
    """The stream of shard ``index``: ``queue`` itself with one shard, else ``queue:{index}``."""
    return queue if shards == 1 else f"{queue}:{{{index}}}"


def dead_name(stream: str) -> str:
    """The dead-letter stream of ``stream`` (same hash tag, so the same cluster slot)."""
    return f"{stream}:dead"


def streams(queue: str, shards: int) -> list[str]:
    """Every shard's stream, in shard order."""
    return [stream_name(queue, shards, i) for i in range(shards)]


def read_streams(queue: str, shards: int) -> list[str]:
    """Every stream a collector reads: the shards and, with more than one, ``queue`` itself,
    where emitters send while they know no shard count (none published yet, or its key lost
    with a cluster node)."""
    return streams(queue, shards) + ([queue] if shards > 1 else [])


def shard_of(record_id: str, shards: int) -> int:
    """The shard a record id belongs to (always 0 with one shard)."""
    if shards == 1:
        return 0
    return zlib.crc32(record_id.encode("utf-8", "surrogatepass")) % shards


def first_id(payload: bytes) -> str:
    """The id a payload is routed by: a version-1 record's id, a batch entry's first id, read
    from the head of the map without decoding the data; an unreadable payload routes by its
    bytes (it is dead-lettered on whichever shard it lands)."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(payload)
    try:
        for _ in range(unpacker.read_map_header()):
            if unpacker.unpack() != "id":
                unpacker.skip()
                continue
            rid: Any = unpacker.unpack()
            rid = rid[0] if isinstance(rid, list) and rid else rid
            return rid if isinstance(rid, str) else payload.hex()
    except Exception:
        pass  # malformed or truncated: routed by its bytes below
    return payload.hex()


def route(queue: str, shards: int, payloads: Sequence[bytes]) -> dict[str, list[bytes]]:
    """``payloads`` grouped by the stream each goes to, in their order within a stream (one
    shard: all to ``queue``, nothing decoded)."""
    if shards == 1:
        return {queue: list(payloads)}
    groups: dict[str, list[bytes]] = {}
    for payload in payloads:
        index = shard_of(first_id(payload), shards)
        groups.setdefault(stream_name(queue, shards, index), []).append(payload)
    return groups
