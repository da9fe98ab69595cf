"""Payloads onto the queue: one XADD a shard per send, retried with capped backoff while Redis
is away or full, then kept in the local spool (workers/spool.py) and re-sent first; a URL from
the connection file of ``collector serve`` followed when its server moves. The Emitter
(workers/emitter.py) builds the records and hands their bytes here."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from workers import shards, xadd
from workers.cluster import REDIS_ERRORS
from workers.identity import where
from workers.lifecycle import ExitHook
from workers.link import Link
from workers.names import FIELD, QueueNames
from workers.settings import EmitterSettings, resolve_queue
from workers.shards import ShardCount
from workers.spool import Spool
from workers.urls import masked

FIRST_DELAY, MAX_DELAY = 0.05, 2.0  # backoff between send attempts while Redis is away
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


class Delivery:
    """Sends encoded entries to one queue on one Redis, through outages (retry, then spool)."""

    def __init__(
        self,
        env: EmitterSettings,
        client: redis.Redis | None,
        *,
        queue_given: bool,
        sleep: Callable[[float], None],
    ) -> None:
        self._link = Link(
            env.server,
            env.redis_url,
            client,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # our own retry loop replaces redis-py's
        )
        self._queue_given = queue_given
        self.queue = env.queue
        self.names = QueueNames(self.queue)
        self._count = ShardCount(self.names, env.shards)  # None: ask the collector
        self.emit_timeout = env.emit_timeout
        self.spool = Spool(env.spool_dir)
        self._sleep = sleep
        self._spooled_pid = 0  # the pid whose spool file holds records not yet re-sent
        self._send_lock = threading.Lock()  # the spool and the retry loop, not a plain send
        self._spool_hook = ExitHook(self.flush_spool)

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
        """Try once more to re-send the spool, then release the connection pool if this
        delivery built it (in this process)."""
        self.flush_spool()
        self._spool_hook.disarm()
        self._link.close()
