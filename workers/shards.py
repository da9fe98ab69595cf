"""Shard naming and routing: the one place that knows which stream a record travels on.

With one shard (the default) the queue is the single stream ``<queue>``; with N > 1 shards it
is N hash-tagged streams, each with its own dead letters (workers.names spells every key), so
every command the collector sends touches one Redis Cluster slot only.

A record goes to shard ``crc32(record id) % N``: stable across processes, hosts and Python
versions (``hash()`` is salted per process), so one key always lands on one shard. A batch entry
(wire version 2) goes whole to the shard of its first record.

Emitters learn N from COLLECTOR_SHARDS, else from the count the collector publishes when it
starts (ShardCount: read again now and then, so emitters follow a new count), else use 1.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import msgpack
import redis

from workers.names import QueueNames

ENV = "COLLECTOR_SHARDS"
log = logging.getLogger(__name__)
MAX_SHARDS = 1024  # far beyond any sensible count: a typo (10000) fails instead of making keys
ASK_AGAIN = 5.0  # s: no collector has published the shard count yet; until then, one stream
FOLLOW = 30.0  # s: how long an emitter routes by a published count before reading it again


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


def published(client: redis.Redis, names: QueueNames) -> int | None:
    """The shard count the collector published for the queue; None while there is none (no
    collector has started yet); 1 when it is malformed (not a string key, even) or this user
    may not read it (an ACL user allowed XADD only: such jobs set COLLECTOR_SHARDS instead).
    An unavailable Redis raises, as a send would: unreachable, or a Redis Cluster that is down
    (an error reply, yet no answer about the key)."""
    try:
        raw: Any = client.get(names.count)
    except redis.exceptions.NoPermissionError:  # reading the count is not this user's right
        return 1
    except redis.exceptions.ResponseError as exc:
        if not str(exc).startswith("WRONGTYPE"):
            raise
        raw = b"(not a string)"  # a key set by hand to a hash, a list...: malformed
    if raw is None:
        return None
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    try:
        return parse_shards(text)
    except ValueError:
        log.warning("ignoring a malformed shard count %r in %s: using 1", text, names.count)
        return 1


class ShardCount:
    """The shard count an emitter routes by: the one given (argument or COLLECTOR_SHARDS), else
    the one the collector published, read again every FOLLOW seconds (ASK_AGAIN while none is
    published), so emitters follow a collector started with another count. A count once known
    stays while the key is missing (lost with a cluster node): never back to ``<queue>``."""

    def __init__(
        self, names: QueueNames, given: int | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.names, self.given, self.clock = names, given, clock
        self._known: int | None = None
        self._ask_after = 0.0

    def get(self, client: redis.Redis) -> int:
        """The count to route by now; an unavailable Redis raises (the caller retries or
        spools), and the count is asked again at the next call."""
        if self.given is not None:
            return self.given
        now = self.clock()
        if now >= self._ask_after:
            found = published(client, self.names)
            self._known = found or self._known
            self._ask_after = now + (FOLLOW if self._known is not None else ASK_AGAIN)
        return self._known or 1


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


def route(names: QueueNames, shards: int, payloads: Sequence[bytes]) -> dict[str, list[bytes]]:
    """``payloads`` grouped by the stream each goes to, in their order within a stream (one
    shard: all to the queue's stream, nothing decoded)."""
    if shards == 1:
        return {names.queue: list(payloads)}
    groups: dict[str, list[bytes]] = {}
    for payload in payloads:
        groups.setdefault(names.shard(shard_of(first_id(payload), shards)), []).append(payload)
    return groups
