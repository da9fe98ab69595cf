"""The read policy: what the collector reads next, behind the small protocol ``Reader``.

``StreamReader`` reads one stream: its own pending entries first (after a restart, a claim or a
lost reply; a suspect one at a time), other consumers' stale entries on a schedule, then new
ones, about ``--batch-size`` records a read (the entries per read adapt to the records per
entry seen), and the next batch read ahead while a backlog lasts. collector.shards composes one
per stream into the reader of a whole queue. The daemon only loops: next batch, store, finish.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from operator import attrgetter
from typing import Any, Protocol

import redis

from collector.batch import Batch
from collector.entries import DeadEntry, Entry
from collector.settings import Settings
from collector.stream import (
    Request,
    Stream,
    reader_client,
    redis_fault,
    stream_class,
)
from workers.cluster import REDIS_ERRORS
from workers.names import QueueNames

log = logging.getLogger(__name__)
_RAW = attrgetter("raw")
FIRST_READ = 32  # entries: up to 32,000 records when they are batch entries
MAX_READ_BYTES = 64 << 20  # a read's entries hold about this much at most (large arrays)
SUSPECT_DELIVERIES = 3  # delivered twice before without an ack: a previous attempt died on it


class Reader(Protocol):
    """What the daemon reads through. Every method may raise a Redis error (the daemon backs
    off and asks again); nothing is acknowledged but what ``finish`` is given."""

    settings: Settings  # what it reads by: batch size, waits, limits, delivery limit

    def start(self) -> None:
        """Build the Redis client (no command sent yet)."""

    def next_batch(self) -> Batch:
        """The next batch, as read and not yet decoded (``Batch.decode``; empty when none came
        within ``--max-wait``)."""

    def finish(self, batch: Batch) -> None:
        """Dead-letter ``batch``'s refused records, then acknowledge it: call it only after the
        batch's transaction committed."""

    def stop(self) -> None:
        """Read nothing more ahead (shutdown begins); ``ahead`` says whether a batch waits."""

    @property
    def ahead(self) -> bool:
        """True while a batch read ahead waits to be taken by ``next_batch``."""

    def report(self, failure: dict[str, Any] | None) -> None:
        """Publish this consumer's failing batch for ``status`` (None: clear it)."""

    def backlog(self) -> int:
        """Entries in the streams read, pending ones included (for the rate log)."""

    def close(self) -> None:
        """Release what was read ahead (it stays pending) and the Redis client."""


class StreamReader:
    """The read policy on one stream (a ``Reader`` by itself, and a part of collector.shards'
    reader). ``auto_ahead``: read the next batch ahead after a full one (a composing reader
    turns it off and chooses the stream to read ahead on); ``owns_client``: close the client
    on ``close``."""

    def __init__(
        self,
        settings: Settings,
        stream: str | None = None,
        *,
        client: redis.Redis | None = None,
        clock: Callable[[], float] = time.monotonic,
        auto_ahead: bool = True,
        owns_client: bool = True,
    ) -> None:
        self.settings, self.clock = settings, clock
        self.names = QueueNames(settings.queue)
        self.name = stream or settings.queue
        self.client = client
        self.auto_ahead, self.owns_client = auto_ahead, owns_client
        self.stream: Stream | None = None
        self.last_error: str | None = None  # the last failure's error, for dead-letter reasons
        self._ready = False  # consumer group created
        self._reading_pending = True
        self._next_claim = 0.0
        self._ahead: Request | None = None  # the next batch's read, sent, reply not yet read
        self._held: list[DeadEntry] = []  # dead letters a full Redis refused; entries pending
        self._closing = False
        # Entries per read: about --batch-size records' worth, from the records per entry seen
        # (at once up, slower down). The first read takes at most FIRST_READ entries (a backlog
        # of batch entries starts with a bounded batch); after single-record entries a burst
        # of batch entries can make one batch of up to --batch-size entries.
        self._read_count = min(settings.batch_size, FIRST_READ)
        self._per_entry = settings.batch_size / self._read_count

    def start(self) -> None:
        if self.client is None:
            self.client = reader_client(self.settings.redis_url)
        if self.stream is None:
            kind = stream_class(self.client)
            self.stream = kind(self.client, self.name, self.settings.consumer, names=self.names)

    @property
    def _s(self) -> Stream:
        if self.stream is None:
            self.start()
        assert self.stream is not None
        return self.stream

    def prepare(self) -> None:
        """The consumer group (once, and again after Redis lost it) and the last error this
        consumer reported before a restart."""
        if not self._ready:
            self._s.ensure_group()
            self.last_error = self.last_error or self._s.last_error()
            self._ready = True

    def next_batch(self, wait: float | None = None) -> Batch:
        """The batch read ahead, else a fresh read waiting up to ``wait`` seconds (default
        ``--max-wait``; 0: not at all)."""
        try:
            self.prepare()
            ahead, self._ahead = self._ahead, None
            entries = self._s.receive(ahead) if ahead is not None else self._read(wait)
        except REDIS_ERRORS as exc:
            self._lost(exc)
            raise
        batch = Batch.taken(entries, self.settings.max_deliveries, self.last_error)
        batch.stream = self.name
        if batch.ids:  # batch entries hold many records: read about --batch-size records
            per_entry = batch.held() / len(batch.ids)
            self._per_entry = max(1.0, per_entry, self._per_entry / 16)  # up at once, down slower
            self._read_count = max(1, int(self.settings.batch_size / self._per_entry))
            size = sum(map(len, filter(None, map(_RAW, entries)))) / len(entries)
            self._read_count = max(1, min(self._read_count, int(MAX_READ_BYTES / max(size, 1))))
        if self.auto_ahead and self.full(batch):
            self.read_ahead()  # a backlog: fetch the next batch while this one is written
        return batch

    def full(self, batch: Batch) -> bool:
        """True when ``batch`` took all a read asks for: a backlog, worth reading ahead."""
        return bool(batch) and len(batch) >= self._read_count

    def _read(self, wait: float | None) -> list[Entry]:
        """Own pending entries first (after a restart or a claim), then stale ones of others,
        then new ones."""
        size, stream = self._read_count, self._s
        if self._reading_pending:
            entries = self._read_own(size)
            if entries:
                return entries
            self._reading_pending = False
        now = self.clock()
        if now >= self._next_claim:
            claimed = stream.claim_stale(self.settings.claim_idle, size)
            if stream.claim_scan_done:
                self._next_claim = now + max(self.settings.claim_idle, 1.0)
            if claimed:
                self._reading_pending = True
                return self._read_own(size)
        return stream.read_new(size, self.settings.max_wait if wait is None else wait)

    def _read_own(self, size: int) -> list[Entry]:
        """Own pending entries, oldest first. When one of them was delivered twice before
        without an ack (a previous attempt died on it), only the first is read: one at a time,
        a record that kills the process meets its delivery limit alone."""
        counts = self._s.pending(size)
        if counts and max(counts.values()) >= SUSPECT_DELIVERIES:
            size = 1
        return self._s.read_pending(size, counts)

    def read_ahead(self) -> None:
        """Ask Redis for the next batch now; its reply is read by the next ``next_batch``,
        after this batch is committed and acknowledged, so the read overlaps the database's
        work. Never more than one batch ahead, and nothing read ahead is acknowledged before
        its own transaction commits."""
        if self._ahead is not None or self._closing or self._reading_pending:
            return  # own pending entries are re-read from the start until acknowledged
        if not self._s.reads_ahead:
            return
        if self.clock() >= self._next_claim:
            return  # claims are due: the next read goes through ``_read``
        try:
            self._ahead = self._s.request_new(self._read_count)
        except REDIS_ERRORS as exc:  # the next read meets the outage itself, and backs off
            self._lost(exc)

    def _lost(self, exc: Exception) -> None:
        """After a Redis error: a lost XREADGROUP reply may have left entries pending, and a
        lost group is created again."""
        self._reading_pending = True
        if redis_fault(exc) == "nogroup":
            self._ready = False

    def finish(self, batch: Batch | None) -> None:
        """Dead-letter and acknowledge ``batch`` (None: only the dead letters a full Redis
        refused before, which keep their entries pending until they are written)."""
        ids, dead = (batch.ids, batch.dead + self._held) if batch else ([], self._held)
        if not ids and not dead:
            return
        try:
            held = self._s.finish(ids, dead)
        except REDIS_ERRORS as exc:
            self._lost(exc)
            raise
        if held and not self._held:
            log.warning(
                "redis is out of memory: %d dead letters wait, their records pending, until it "
                "has room again",
                len(held),
            )
        self._held = held

    @property
    def held(self) -> bool:
        return bool(self._held)

    def stop(self) -> None:
        self._closing = True

    @property
    def ahead(self) -> bool:
        return self._ahead is not None

    def report(self, failure: dict[str, Any] | None) -> None:
        if failure is not None:
            self.last_error = failure["error"]
        self._s.report(failure)

    def backlog(self) -> int:
        return self._s.length()

    def close(self) -> None:
        if self._ahead is not None and self.stream is not None:
            self.stream.drop(self._ahead)  # its entries stay pending: read at the next start
        self._ahead = None
        if self.owns_client and self.client is not None:
            self.client.close()
