"""The Emitter: turns results into wire records and XADDs them to the queue stream."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from workers import shards, xadd
from workers.buffer import SendBuffer
from workers.checks import MAX_ID_LENGTH
from workers.cluster import REDIS_ERRORS
from workers.entry import MAX_ENTRY_BYTES, Packed, check_size, encode_entries, packed
from workers.errors import EncodeError
from workers.identity import where
from workers.jobinfo import current_job_id, elapsed, host_name, peak_rss
from workers.lifecycle import ExitHook, renew_after_fork
from workers.link import Link
from workers.names import FIELD, QueueNames
from workers.record import Record, new_id, pack_data
from workers.settings import EmitterSettings, resolve_queue
from workers.shards import ShardCount
from workers.spool import Spool
from workers.urls import masked

FIRST_DELAY, MAX_DELAY = 0.05, 2.0  # backoff between send attempts while Redis is away
BUFFER_BYTES = 8 * MAX_ENTRY_BYTES  # a buffer holding this much data is sent at once
SOCKET_TIMEOUT = 5.0  # a Redis that accepts but never answers counts as unreachable after this
# Redis cannot take records right now: unreachable, not answering, or full (an XADD refused
# with OOM at maxmemory under noeviction). All are outages: retry, then spool.
# On a Redis Cluster also: no node reachable, or the cluster is down (slots not served).
UNAVAILABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.OutOfMemoryError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.RedisClusterException,
)
RESEND_ERRORS: tuple[type[Exception], ...] = (*REDIS_ERRORS, OSError)  # a spool not re-sent yet
log = logging.getLogger(__name__)


def as_data(result: Any) -> dict[str, Any]:
    """A result as column -> value: a mapping as it is, anything else under ``result``."""
    if isinstance(result, Mapping):
        return dict(result)
    return {"result": result}


def _data_bytes(item: Packed) -> int:
    return len(item.data)


def _checked(key: Any) -> str:
    """``key`` as a record id, or EncodeError."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_ID_LENGTH:
        raise EncodeError(f"key must be a non-empty string of at most {MAX_ID_LENGTH} chars")
    return key


class Emitter:
    """Sends records to one queue on one Redis; cheap to call, safe to use after ``fork``.

    Pass ``client`` (e.g. a fakeredis client in tests) or let it connect lazily to
    ``redis_url`` (default: COLLECTOR_REDIS_URL) on first use. While Redis is unreachable a
    send is retried for ``emit_timeout`` seconds (COLLECTOR_EMIT_TIMEOUT), then the records go
    to the local spool in ``spool_dir`` (COLLECTOR_SPOOL_DIR) and are re-sent before the next
    send, at exit, or by ``collector spool flush``. A URL from the connection file of
    ``collector serve`` is checked on every connection and followed when serve moves. With
    ``buffer=N`` records are sent N per round trip, or ``flush_interval`` seconds after the
    first is queued, on ``flush()``/``close()``, at normal exit and when a multiprocessing
    worker ends; a killed process loses its unsent buffer. ``shards`` (default:
    COLLECTOR_SHARDS, else what the collector published, else 1) spreads records over the
    queue's shards (workers.shards).
    """

    def __init__(
        self,
        redis_url: str | None = None,
        queue: str | None = None,
        *,
        client: redis.Redis | None = None,
        emit_timeout: float | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        buffer: int = 0,
        flush_interval: float = 1.0,
        shards: int | None = None,
    ) -> None:
        env = EmitterSettings.from_env(
            redis_url, queue, emit_timeout=emit_timeout, spool_dir=spool_dir, shards=shards
        )
        self._link = Link(
            env.server,
            env.redis_url,
            client,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # our own retry loop replaces redis-py's
        )
        self._queue_given = bool(queue)
        self.queue = env.queue
        self.names = QueueNames(self.queue)
        self._count = ShardCount(self.names, env.shards)  # None: ask the collector
        self.emit_timeout = env.emit_timeout
        self.spool = Spool(env.spool_dir)
        self._sleep = sleep
        self._spooled_pid = 0  # the pid whose spool file holds records not yet re-sent
        self._send_lock = threading.Lock()  # the spool and the retry loop, not a plain send
        self._spool_hook = ExitHook(self.flush_spool)
        self._buffer = SendBuffer(
            self._send_packed, buffer, flush_interval, most_bytes=BUFFER_BYTES, weigh=_data_bytes
        ) if buffer else None  # fmt: skip
        renew_after_fork(self)

    def __repr__(self) -> str:
        return f"Emitter(redis_url={masked(self.redis_url)!r}, queue={self.queue!r})"

    def after_fork_in_child(self) -> None:
        """Fresh locks in a forked child: a parent thread may have been inside a send."""
        self._send_lock = threading.Lock()
        self._link.after_fork_in_child()

    @property
    def redis_url(self) -> str:
        """The URL records go to (it changes when a followed connection file does)."""
        return self._link.url

    @property
    def client(self) -> redis.Redis:
        """The Redis client, built on first use and again in a forked child."""
        return self._link.client

    def _follow_file(self) -> bool:
        """True when the connection file (if the URL came from one) now names another server
        (serve restarted on a new port or password): the next send goes there, with the queue
        and shard count that follow unless given."""
        found = self._link.follow()
        if found is None:
            return False
        if not self._queue_given:
            self.queue = resolve_queue(None, found)
            self.names = QueueNames(self.queue)
        self._count = ShardCount(self.names, self._count.given)  # the new server's count
        log.info("following %s to redis at %s", found.file or found.missing, masked(self.redis_url))
        return True

    def record(self, result: Any, *, table: str = "results", key: str | None = None) -> Record:
        """Build the wire record for ``result`` without sending it."""
        return Record(
            id=_checked(key) if key is not None else new_id(),
            table=table,
            data=as_data(result),
            ts=time.time(),
            host=host_name(),
            pid=os.getpid(),
            job=current_job_id(),
            elapsed=elapsed(),
            maxrss=peak_rss(),
        )

    def emit(self, result: Any, *, table: str = "results", key: str | None = None) -> str:
        """Send one result; returns its record id once Redis has it (buffered: once queued).
        Unbuffered it travels alone (wire version 1); buffered, in a batch entry (version 2)."""
        if self._buffer is None:
            rec = self.record(result, table=table, key=key)
            self._send([check_size(rec.encode(), table)])
            return rec.id
        rid = _checked(key) if key is not None else new_id()
        data = check_size(pack_data(as_data(result), table), table)  # fails here, in the caller
        job, stamp = current_job_id(), time.time()
        self._buffer.add([Packed(table, host_name(), os.getpid(), job, rid, stamp,
                                 elapsed(), peak_rss(), data)])  # fmt: skip
        return rid

    def emit_many(self, results: Iterable[Any], *, table: str = "results") -> list[str]:
        """Send many results in one round trip, as batch entries (wire version 2) of up to
        1,000 records and 8 MiB; returns their record ids. They share one emit time and source
        (one call, one moment, one job)."""
        source = (time.time(), host_name(), os.getpid(), current_job_id(), elapsed(), peak_rss())
        items = [packed(Record(new_id(), table, as_data(r), *source)) for r in results]
        if self._buffer is None:
            self._send(encode_entries(items))
        else:
            self._buffer.add(items)
        return [item.id for item in items]

    # Buffered mode (``buffer=N``): emit and emit_many queue packed records; SendBuffer hands
    # them to ``_send_packed`` on size, on its timer, on ``flush()``, on ``close()`` and at exit.

    def _send_packed(self, items: list[Packed]) -> None:
        self._send(encode_entries(items))

    def flush(self) -> None:
        """Send what the buffer holds now (a no-op without ``buffer``)."""
        if self._buffer is not None:
            self._buffer.flush()

    def _send(self, payloads: list[bytes]) -> None:
        """Put ``payloads`` on the queue, retrying with capped backoff while Redis is away or
        full; after ``emit_timeout`` keep them in the spool instead.

        While this process has records spooled, a send first re-sends the spool, so records
        arrive in the order they were emitted (under one key the first emitted stays); if that
        fails, ``payloads`` join the spool at once: the outage is known, and a job should not
        wait ``emit_timeout`` for every result. A URL from a connection file follows the file
        when its server stops answering. Wrong credentials are not retried. A spool that cannot
        be written raises EmitError.
        """
        if not payloads:
            return
        if self._spooled_pid != os.getpid():
            try:  # the common case, without the lock: each thread on its own pooled connection
                self._xadd(self.queue, payloads)
                return
            except UNAVAILABLE:
                pass  # the retry loop below, one thread at a time, tries again from the start
        with self._send_lock:
            spooling = self._spooled_pid == os.getpid()
            if spooling:  # the spool first: its records were emitted before these
                self._follow_file()
                error = self._resend_spool()
                if error is not None:
                    self._spool(payloads, error, warn=False)
                    return
            deadline = time.monotonic() + (0.0 if spooling else self.emit_timeout)
            delay = FIRST_DELAY
            while True:
                try:
                    self._xadd(self.queue, payloads)
                    return
                except UNAVAILABLE as exc:
                    if self._follow_file():
                        continue  # the file names a new server: try it at once
                    hopeless = isinstance(exc, redis.AuthenticationError)  # wrong credentials
                    if hopeless or time.monotonic() + delay > deadline:
                        self._spool(payloads, exc, warn=not spooling)
                        return
                    if delay == FIRST_DELAY:  # said at once: a shell loop is not silent for 30 s
                        log.warning(
                            "%s does not take records (%s): retrying for up to %.0f s, then "
                            "spooling",
                            where(self._link.server, self.redis_url),
                            exc,
                            self.emit_timeout,
                        )
                    self._sleep(delay)
                    delay = min(MAX_DELAY, delay * 2)

    @property
    def shard_count(self) -> int:
        """The queue's shard count: given, COLLECTOR_SHARDS, else what the collector published
        (workers.shards.ShardCount). An unavailable Redis raises, as a send would, so the caller
        retries or spools."""
        return self._count.get(self.client)

    def _xadd(self, queue: str, payloads: list[bytes]) -> None:
        """XADD every payload to its shard of ``queue``, one round trip a shard (a retry after a
        failure may repeat some; the collector stores one row per record id). The spool keeps
        the queue, not the shard, so re-sent records are routed here too."""
        names = self.names if queue == self.queue else QueueNames(queue)
        for stream, group in shards.route(names, self.shard_count, payloads).items():
            xadd.send(self.client, stream, FIELD, group)

    def _spool(self, payloads: list[bytes], exc: Exception, *, warn: bool) -> None:
        """Keep ``payloads`` in this process's spool file (EmitError if it cannot be written)."""
        path = self.spool.append(self.queue, payloads)
        self._spooled_pid = os.getpid()
        self._spool_hook.arm()
        if warn:
            log.warning(
                "%s took no records for %.0f s (%s): spooling records to %s until it does",
                where(self._link.server, self.redis_url),
                self.emit_timeout,
                exc,
                path,
            )

    def _resend_spool(self) -> Exception | None:
        """Re-send this process's spooled records (ids unchanged); what fails stays spooled.
        Returns the outage that stopped it, None when Redis took them (or refused them for a
        reason no wait would change: then they stay for ``collector spool flush``)."""
        try:
            result = self.spool.flush(self._xadd, [self.spool.path])
        except UNAVAILABLE as exc:
            return exc  # still spooled; the next send tries again first
        except RESEND_ERRORS as exc:  # not an outage: do not hold back what comes next
            log.warning("could not re-send the spool %s yet: %s", self.spool.path, exc)
            return None
        self._spooled_pid = 0
        log.info("re-sent %d spooled records from %s", result.sent, self.spool.path)
        return None

    def flush_spool(self) -> None:
        """Re-send this process's spooled records now (also run at exit); what fails stays in
        the spool file for ``collector spool flush``."""
        if self._spooled_pid != os.getpid():
            return
        with self._send_lock:
            self._follow_file()
            self._resend_spool()
        if self._spooled_pid == os.getpid():
            log.warning(
                "redis still unreachable or full: records stay in %s; send them later with "
                "`collector spool flush %s`",
                self.spool.path,
                self.spool.directory,
            )

    def close(self) -> None:
        """Flush the buffer, try once more to re-send the spool, then release the connection pool
        if this emitter built it (in this process)."""
        if self._buffer is not None:
            self._buffer.close()
        self.flush_spool()
        self._spool_hook.disarm()
        self._link.close()
