"""Reading a sharded queue: one ``Stream`` per shard behind the interface the daemon uses.

With ``--shards 1`` the daemon uses a plain ``Stream`` on ``<queue>``, exactly as before. With
N > 1, ``ShardedStream`` holds one ``Stream`` per shard stream (workers.shards names them) and
one on ``<queue>`` itself, where emitters send while they know no shard count, read like a
shard (workers.shards.read_streams). It:

- tags every entry id it hands out with its shard (``b"<shard>|<id>"``): two shards may hold
  the same entry id, and ``finish`` must ack and dead-letter an entry on its own shard;
- reads shards in turn, starting one further each time, so no shard starves: a non-blocking
  pass first, then, when every shard is empty, a blocking pass that gives each shard an equal
  part of ``--max-wait`` (a read never waits longer than the batch wait allows overall);
- keeps pending re-reads, claims and delivery counts per shard (each Stream does its own);
- sends every command to one shard's keys only, so each touches one Redis Cluster slot.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from collector.stream import GROUP, DeadEntry, Entry, Request, Stream, entries_of, messages_of
from workers.cluster import client_from_url, is_cluster_client, is_cluster_url
from workers.shards import count_key, published, read_streams, stream_name

SEP = b"|"
log = logging.getLogger(__name__)


def open_stream(client: redis.Redis, queue: str, consumer: str, shards: int) -> Stream:
    """The daemon's view of the queue: a Stream (on a cluster a ClusterStream) for one shard,
    else a ShardedStream."""
    if shards == 1:
        return stream_class(client)(client, queue, consumer)
    return ShardedStream(client, queue, consumer, shards)


class ClusterStream(Stream):
    """A Stream on a Redis Cluster: the cluster client routes each command to its slot's node,
    but lends no raw connection, so a read "ahead" is an ordinary XREADGROUP done at once."""

    def request_new(self, count: int, block_ms: int | None = None) -> Request:
        reply: Any = self.client.xreadgroup(
            self.group, self.consumer, {self.queue: ">"}, count=count, block=block_ms
        )
        return Request(conn=entries_of(messages_of(reply)))

    def receive(self, request: Request) -> list[Entry]:
        return list(request.conn)

    def drop(self, request: Request) -> None:
        """Nothing to release: the entries stay pending and are re-read at the next start."""


def reader_client(redis_url: str) -> redis.Redis:
    """The collector's client. On a cluster, without the cluster client's own retries: an
    XREADGROUP it sent again after a lost reply would leave the first reply's entries pending
    unseen until a restart; the failure reaches the daemon instead, which backs off and re-reads
    its own pending entries."""
    if is_cluster_url(redis_url):
        return client_from_url(redis_url, retry=Retry(NoBackoff(), 0))
    return client_from_url(redis_url)


def stream_class(client: redis.Redis) -> type[Stream]:
    """ClusterStream for a cluster client, else Stream."""
    return ClusterStream if is_cluster_client(client) else Stream


def known_shards(client: redis.Redis, queue: str, given: int | None = None) -> int:
    """The queue's shard count for a command: ``given`` (--shards / COLLECTOR_SHARDS), else
    what the collector published, else 1."""
    return given if given is not None else published(client, queue) or 1


def known_streams(client: redis.Redis, queue: str, given: int | None = None) -> list[str]:
    """Every stream the collectors read for ``queue`` (workers.shards.read_streams), at the
    count ``known_shards`` finds."""
    return read_streams(queue, known_shards(client, queue, given))


def tag(index: int, entry_id: bytes) -> bytes:
    """``entry_id`` of shard ``index`` as the daemon sees it."""
    return b"%d|%s" % (index, entry_id)


def untag(tagged: bytes) -> tuple[int, bytes]:
    """The shard and the stream's own entry id of a tagged id."""
    index, entry_id = tagged.split(SEP, 1)
    return int(index), entry_id


class ShardedStream(Stream):
    """N shard streams (and ``<queue>``) read by one consumer as one queue; entry ids carry
    their shard."""

    def __init__(
        self, client: redis.Redis, queue: str, consumer: str, shards: int, group: str = GROUP
    ) -> None:
        super().__init__(client, queue, consumer, group)
        kind = stream_class(client)
        names = read_streams(queue, shards)
        self.shards = [kind(client, name, consumer, group) for name in names]
        self.count = shards
        self.health_key = self.shards[0].health_key
        self._next = 0  # the shard the next read starts at
        self._ahead_count = 1  # entries the read ahead asked for

    def _order(self) -> list[int]:
        """Shard indexes starting at the rotating cursor, which moves on by one."""
        start, count = self._next, len(self.shards)
        self._next = (start + 1) % count
        return [(start + i) % count for i in range(count)]

    @staticmethod
    def _tagged(index: int, entries: list[Entry]) -> list[Entry]:
        prefix, make = tag(index, b""), Entry._make  # one tuple a record: no _replace
        return [make((prefix + e[0], e[1], e[2], e[3])) for e in entries]

    def ensure_group(self) -> bool:
        """The group on every shard, then the shard count published for emitters (with a
        warning when it replaces a larger one: shards past this collector's are not read)."""
        created = [shard.ensure_group() for shard in self.shards]
        before, count = published(self.client, self.queue), self.count
        if before is not None and before > count:
            log.warning(
                "%s said %d shards, this collector reads %d: records on %s .. %s are read only "
                "by a collector with --shards %d (emitters that read %d route by it until they "
                "restart; collector status --shards %d shows what waits there)",
                count_key(self.queue), before, count, stream_name(self.queue, before, count),
                stream_name(self.queue, before, before - 1), before, before, before,
            )  # fmt: skip
        with contextlib.suppress(redis.exceptions.OutOfMemoryError):  # emitters may set it too
            self.client.set(count_key(self.queue), count)
        return any(created)

    def read_pending(self, count: int) -> list[Entry]:
        """The first shard's own pending entries that has any (each with its delivery counts)."""
        for index in range(len(self.shards)):
            entries = self.shards[index].read_pending(count)
            if entries:
                return self._tagged(index, entries)
        return []

    def read_new(self, count: int, block_seconds: float) -> list[Entry]:
        """New entries from the first shard in turn that has any; when none has, wait on each
        shard in turn for its share of ``block_seconds``."""
        order = self._order()
        for index in order:
            entries = self.shards[index].read_new(count, 0)
            if entries:
                return self._tagged(index, entries)
        share = block_seconds / len(self.shards)
        if share <= 0:
            return []
        for index in order:
            entries = self.shards[index].read_new(count, share)
            if entries:
                return self._tagged(index, entries)
        return []

    def request_new(self, count: int, block_ms: int | None = None) -> Request:
        """A read ahead on the next shard in turn (see ``Stream.request_new``)."""
        index = self._order()[0]
        self._ahead_count = count
        return replace(self.shards[index].request_new(count, block_ms), shard=index)

    def receive(self, request: Request) -> list[Entry]:
        """The read ahead's entries; when its shard had none, the next shard in turn that has
        any (without waiting): one empty shard must not end a drain of the others."""
        entries = self.shards[request.shard].receive(request)
        if entries:
            return self._tagged(request.shard, entries)
        return self.read_new(self._ahead_count, 0)

    def drop(self, request: Request) -> None:
        self.shards[request.shard].drop(request)

    def claim_stale(self, idle_seconds: float, count: int) -> int:
        """Claims on every shard whose pending scan is still under way (or starts anew)."""
        return sum(shard.claim_stale(idle_seconds, count) for shard in self.shards)

    @property
    def claim_scan_done(self) -> bool:
        return all(shard.claim_scan_done for shard in self.shards)

    def length(self) -> int:
        return sum(shard.length() for shard in self.shards)

    def finish(self, ids: list[bytes], dead: list[DeadEntry]) -> list[DeadEntry]:
        """Dead-letter and acknowledge each entry on its own shard (one shard's keys a call)."""
        by_ids: dict[int, list[bytes]] = {}
        by_dead: dict[int, list[DeadEntry]] = {}
        for tagged in ids:  # untag() inlined: once a record
            shard, _, entry_id = tagged.partition(SEP)
            by_ids.setdefault(int(shard), []).append(entry_id)
        for tagged, raw, reason in dead:
            index, entry_id = untag(tagged)
            by_dead.setdefault(index, []).append((entry_id, raw, reason))
        held: list[DeadEntry] = []
        for index in sorted(by_ids.keys() | by_dead.keys()):
            kept = self.shards[index].finish(by_ids.get(index, []), by_dead.get(index, []))
            held += [(tag(index, entry_id), raw, reason) for entry_id, raw, reason in kept]
        return held

    def stats(self) -> dict[str, Any]:
        """The totals ``status`` has always shown, plus ``shards``: each shard's own figures."""
        per = [{"stream": shard.queue, **shard.stats()} for shard in self.shards]
        failing: dict[str, Any] = {}
        consumers: dict[str, dict[str, Any]] = {}
        for one in per:
            failing.update(one["failing"])
            for c in one["consumers"]:
                seen = consumers.setdefault(c["name"], {**c, "pending": 0})
                seen["pending"] += c["pending"]
                seen["idle_ms"] = min(seen["idle_ms"], c["idle_ms"])
        return {
            "queue": sum(one["queue"] for one in per),
            "pending": sum(one["pending"] for one in per),
            "dead": sum(one["dead"] for one in per),
            "consumers": list(consumers.values()),
            "failing": failing,
            "persistence": per[0]["persistence"],
            "shards": [{k: one[k] for k in ("stream", "queue", "pending", "dead")} for one in per],
        }
