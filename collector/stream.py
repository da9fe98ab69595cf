"""The collector's Redis commands on one stream: consumer group, reading, claiming, dead
letters, acks, health (what to read when is collector.reader's; the ``collector dead`` commands
read the dead letters through collector.deadletters)."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import hiredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from collector.entries import DeadEntry, Entry, entries_of, flat_entries, messages_of
from collector.heap import waiting
from workers.cluster import client_from_url, is_cluster_client, is_cluster_url
from workers.names import FIELD, REASON, TS, QueueNames
from workers.xadd import replies_on, round_trip

GROUP = "collector"
_pack: Any = hiredis.pack_command  # a command's RESP bytes (its stub takes one argument only)


@dataclass(frozen=True)
class Request:
    """A read sent to Redis whose reply is still on ``conn`` (see ``Stream.request_new``);
    ``timeout``: how long its reply may take, its BLOCK included (None: the socket's)."""

    conn: Any
    timeout: float | None = None


def redis_fault(exc: Exception) -> str:
    """``config`` (credentials, permissions, a queue key that is no stream: retrying cannot
    help), ``nogroup`` (the group is gone: Redis restarted without persistence, or the stream
    was deleted), else ``retry`` (unreachable, loading, out of memory: wait and try again)."""
    if isinstance(exc, redis.AuthenticationError | redis.exceptions.NoPermissionError):
        return "config"
    text = str(exc)
    if text.startswith("WRONGTYPE"):
        return "config"
    if "NOGROUP" in text:
        return "nogroup"
    return "retry"


def report_health(
    client: redis.Redis, names: QueueNames, consumer: str, failure: dict[str, Any] | None
) -> None:
    """Publish ``consumer``'s failing batch in the queue's health hash, or clear it (None)."""
    if failure is None:
        client.hdel(names.health, consumer)
    else:
        client.hset(names.health, consumer, json.dumps(failure))


def reader_client(redis_url: str) -> redis.Redis:
    """The collector's client. On a cluster, without the cluster client's own retries: an
    XREADGROUP it sent again after a lost reply would leave the first reply's entries pending
    unseen until a restart; the failure reaches the daemon instead, which backs off and re-reads
    its own pending entries."""
    if is_cluster_url(redis_url):
        return client_from_url(redis_url, retry=Retry(NoBackoff(), 0))
    return client_from_url(redis_url)


class Stream:
    """One stream (``queue``: the queue's stream, or one shard's, of the queue ``names``) read
    through the ``collector`` consumer group by one named consumer."""

    def __init__(
        self,
        client: redis.Redis,
        queue: str,
        consumer: str,
        group: str = GROUP,
        *,
        names: QueueNames | None = None,
    ) -> None:
        self.client = client
        self.queue = queue
        self.names = names or QueueNames(queue)
        self.dead_key = self.names.dead(queue)
        self.health_key = self.names.health
        self.consumer = consumer
        self.group = group
        self._claim_cursor = b"-"

    def ensure_group(self) -> bool:
        """Create the group at the start of the stream (id 0), so earlier records are kept, and
        this consumer in it (``status`` lists it before its first record); True when the group
        had to be created. A Redis at ``maxmemory`` refuses both even when they exist: then
        an existing group is enough."""
        try:
            self.client.xgroup_create(self.queue, self.group, id="0", mkstream=True)
            created = True
        except redis.exceptions.OutOfMemoryError:
            groups: Any = self.client.xinfo_groups(self.queue)
            if not any(_bytes(g["name"]) == self.group.encode() for g in groups):
                raise
            return False
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            created = False
        with contextlib.suppress(redis.exceptions.OutOfMemoryError):
            self.client.xgroup_createconsumer(self.queue, self.group, self.consumer)
        self.check_access()
        return created

    def check_access(self) -> None:
        """XACK and XDEL of id 0-0, which no entry has: a user the ACL denies either is refused
        before its first read (NoPermissionError naming the command), rather than after its
        first batch committed, leaving entries unacknowledged or acknowledged in the stream."""
        try:
            self.client.xack(self.queue, self.group, "0-0")
            self.client.xdel(self.queue, "0-0")
        except redis.exceptions.NoPermissionError as exc:
            raise redis.exceptions.NoPermissionError(
                f"{exc} (the collector needs it for every batch it stores: see the ACL rule in "
                "docs/security.md)"
            ) from None

    def pending(self, count: int) -> dict[bytes, int]:
        """Up to ``count`` of this consumer's delivered-but-unacknowledged entries, oldest
        first: entry id -> deliveries, the next one included."""
        peek: Any = self.client.xpending_range(
            self.queue, self.group, "-", "+", count, consumername=self.consumer
        )
        return {p["message_id"]: int(p["times_delivered"]) + 1 for p in peek}

    def read_pending(self, count: int, counts: dict[bytes, int] | None = None) -> list[Entry]:
        """Up to ``count`` of this consumer's pending entries (after a restart or a claim),
        oldest first, with their delivery counts (``counts``, from ``pending``, else asked)."""
        counts = self.pending(count) if counts is None else counts
        if not counts:
            return []
        reply: Any = self.client.xreadgroup(
            self.group, self.consumer, {self.queue: "0"}, count=count
        )
        return entries_of(messages_of(reply), counts)

    def read_new(self, count: int, block_seconds: float) -> list[Entry]:
        """Up to ``count`` new entries, waiting at most ``block_seconds`` for the first."""
        block = max(1, int(block_seconds * 1000)) if block_seconds > 0 else None
        return self.receive(self.request_new(count, block))

    def request_new(self, count: int, block_ms: int | None = None) -> Request:
        """Send XREADGROUP for up to ``count`` new entries and return the connection that holds
        the reply: Redis prepares it while the caller writes to the database, and ``receive``
        reads it later, in the same thread (a reader thread would wait for the GIL after every
        socket read while this one decodes and writes)."""
        pool = self.client.connection_pool
        conn = pool.get_connection()
        block = ("BLOCK", block_ms) if block_ms is not None else ()
        try:
            conn.send_command(
                "XREADGROUP", "GROUP", self.group, self.consumer, "COUNT", count, *block,
                "STREAMS", self.queue, ">",
            )  # fmt: skip
        except BaseException:
            conn.disconnect()
            pool.release(conn)
            raise
        if block_ms is None or conn.socket_timeout is None:
            return Request(conn)
        return Request(conn, conn.socket_timeout + block_ms / 1000)  # a wait is no outage

    @property
    def reads_ahead(self) -> bool:
        """Whether a read may be sent ahead: its connection is held until the reply is read,
        while the batch before it is acknowledged on another one (``?max_connections=1``
        lends one only)."""
        return int(getattr(self.client.connection_pool, "max_connections", 2)) >= 2

    def receive(self, request: Request) -> list[Entry]:
        """The entries a ``request_new`` asked for."""
        with replies_on(self.client.connection_pool, request.conn), waiting():
            reply: Any = (  # the wait: up to the read's BLOCK
                request.conn.read_response()
                if request.timeout is None
                else request.conn.read_response(timeout=request.timeout)
            )
        return flat_entries(messages_of(reply))

    def drop(self, request: Request) -> None:
        """Forget a request without reading its reply (its entries stay pending)."""
        request.conn.disconnect()
        self.client.connection_pool.release(request.conn)

    def claim_stale(self, idle_seconds: float, count: int) -> int:
        """Take over entries other consumers left unacknowledged for ``idle_seconds`` or longer,
        ``count`` pending entries examined per call, resuming where the last call stopped. Ids
        only (XCLAIM JUSTID): a claim is no delivery, ``read_pending`` delivers and counts them.
        Returns how many were taken."""
        idle = int(idle_seconds * 1000)
        rows: Any = self.client.xpending_range(  # IDLE 0 filters nothing: not sent at all
            self.queue, self.group, self._claim_cursor, "+", count, idle=idle or None
        )
        self._claim_cursor = b"(" + rows[-1]["message_id"] if len(rows) == count else b"-"
        mine = self.consumer.encode()
        ids = [r["message_id"] for r in rows if _bytes(r["consumer"]) != mine]
        if not ids:
            return 0
        claimed: Any = self.client.xclaim(
            self.queue, self.group, self.consumer, idle, ids, justid=True
        )
        return len(claimed)

    @property
    def claim_scan_done(self) -> bool:
        """True once the claims have walked the whole pending list."""
        return self._claim_cursor == b"-"

    def length(self) -> int:
        """Entries in the stream: acknowledged ones are deleted, so this is the backlog."""
        return int(self.client.xlen(self.queue))

    def finish(self, ids: list[bytes], dead: list[DeadEntry]) -> list[DeadEntry]:
        """Dead-letter ``dead`` (entry id, raw, reason), then delete and acknowledge ``ids``.
        Returns the dead letters a Redis at ``maxmemory`` refused: their entries stay pending,
        and the caller passes them to a later call.

        No MULTI: a full Redis refuses every command queued in one, while XDEL and XACK alone
        still run (and free memory once whole stream nodes are deleted). XDEL goes first: an
        entry deleted but still pending is re-read as empty and acknowledged then. A crash
        between a dead letter and its acknowledgement writes that dead letter twice.
        """
        held: list[DeadEntry] = []
        if dead:
            pipe = self.client.pipeline(transaction=False)
            now = f"{time.time():.6f}"
            for _entry_id, raw, reason in dead:
                pipe.xadd(self.dead_key, {FIELD: raw, REASON: reason, TS: now})
            for letter, reply in zip(dead, pipe.execute(raise_on_error=False), strict=True):
                if isinstance(reply, redis.exceptions.OutOfMemoryError):
                    held.append(letter)
                elif isinstance(reply, Exception):
                    raise reply
        done = ids
        if dead:
            kept = {entry_id for entry_id, _raw, _reason in held}
            done = [i for i in ids if i not in kept] + [d[0] for d in dead if d[0] not in kept]
            done = list(dict.fromkeys(done))
        if done:
            self._delete_and_ack(done)
        return held

    def _delete_and_ack(self, ids: list[bytes]) -> None:
        """XDEL, then XACK, of ``ids`` in one write: the commands packed by hiredis in C (redis-py's
        pipeline spends longer in Python on thousands of ids than Redis takes to run them), the
        replies read like an emitter's XADDs (workers.xadd), with the connection's retries."""
        data = _pack(("XDEL", self.queue, *ids)) + _pack(("XACK", self.queue, self.group, *ids))
        pool = self.client.connection_pool
        conn = pool.get_connection()
        with replies_on(pool, conn):
            conn.retry.call_with_retry(
                lambda: round_trip(conn, data, 2), lambda _error: conn.disconnect()
            )

    def report(self, failure: dict[str, Any] | None) -> None:
        """Publish this consumer's failing batch (``status`` shows it), or clear it (None)."""
        report_health(self.client, self.names, self.consumer, failure)

    def last_error(self) -> str | None:
        """The error this consumer last reported for a batch that kept failing, if any."""
        raw: Any = self.client.hget(self.health_key, self.consumer)
        try:
            error = json.loads(raw).get("error") if raw else None
        except (ValueError, RecursionError, AttributeError):  # not what report() writes
            return None  # anyone can write to Redis: a collector starts whatever is there
        return error if isinstance(error, str) else None


class ClusterStream(Stream):
    """A Stream on a Redis Cluster: the cluster client routes each command to its slot's node,
    but lends no raw connection, so a read "ahead" is an ordinary XREADGROUP done at once."""

    def request_new(self, count: int, block_ms: int | None = None) -> Request:
        with waiting():
            reply: Any = self.client.xreadgroup(
                self.group, self.consumer, {self.queue: ">"}, count=count, block=block_ms
            )
        return Request(conn=entries_of(messages_of(reply)))

    @property
    def reads_ahead(self) -> bool:
        return True  # its read ahead is done at once, holding no connection

    def receive(self, request: Request) -> list[Entry]:
        return list(request.conn)

    def drop(self, request: Request) -> None:
        """Nothing to release: the entries stay pending and are re-read at the next start."""

    def _delete_and_ack(self, ids: list[bytes]) -> None:
        pipe = self.client.pipeline(transaction=False)  # sent to the node of the stream's slot
        pipe.xdel(self.queue, *ids)
        pipe.xack(self.queue, self.group, *ids)
        pipe.execute()


def stream_class(client: redis.Redis) -> type[Stream]:
    """ClusterStream for a cluster client, else Stream."""
    return ClusterStream if is_cluster_client(client) else Stream


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def text(value: bytes | str) -> str:
    """A reply's name as text (replies are bytes, or str with decode_responses)."""
    return value.decode() if isinstance(value, bytes) else value
