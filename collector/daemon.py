"""Where stream and store meet: ``run_once`` does one batch, ``run`` repeats it with backoff.

A batch is acknowledged only after the transaction holding it has committed; if the database
is unavailable the same batch is retried and nothing more is read (never one batch ahead).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import sqlalchemy as sa

from collector.batch import Batch
from collector.db import make_engine, sqlite_path
from collector.deadlog import log_dead_letters
from collector.errors import ConfigError, DatabaseUnavailable
from collector.lock import WriterLock
from collector.observer import Observer
from collector.settings import Settings
from collector.shards import open_stream, reader_client
from collector.store import Schema, Store
from collector.stream import DeadEntry, Entry, Request, redis_fault
from workers.cluster import REDIS_ERRORS
from workers.settings import mask_url

log = logging.getLogger(__name__)
RATE_LOG_SECONDS = 10.0
FIRST_READ = 32  # entries: up to 32,000 records when they are batch entries


@dataclass
class Counters:
    """What the collector has done since it started."""

    records: int = 0  # records taken: stored + dead (a batch entry counts its records)
    stored: int = 0
    dead: int = 0
    batches: int = 0


@dataclass
class Failure:
    """A batch that keeps failing: since when, how often, and the last error."""

    since: float
    attempts: int
    error: str


class Backoff:
    """Capped exponential delays: 0.1 s, 0.2 s, ... up to ``cap``; reset after a success."""

    def __init__(self, first: float = 0.1, cap: float = 10.0) -> None:
        self.first, self.cap, self.failures = first, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.first * 2**self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class Collector:
    """Drains the queue stream into the database. Builds no connection until ``start``."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: redis.Redis | None = None,
        engine: sa.Engine | None = None,
        declared: sa.MetaData | None = None,
        clock: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
    ) -> None:
        self.settings = settings
        self.client = client or reader_client(settings.redis_url)
        self.engine = engine or make_engine(settings.db_url)
        self.stream = open_stream(self.client, settings.queue, settings.consumer, settings.shards)
        self.store = Store(self.engine, Schema(declared))
        self.clock = clock
        self.observer = observer  # told of every batch and failed attempt (metrics)
        self.counters = Counters()
        self.failure: Failure | None = None
        self._batch: Batch | None = None  # read, not yet stored
        self._unacked: Batch | None = None  # stored, not yet acknowledged
        self._held: list[DeadEntry] = []  # dead letters a full Redis refused; entries pending
        self._reading_pending = True
        self._group_ready = False
        self._last_error: str | None = None
        self._next_claim = 0.0
        self._lock: WriterLock | None = None
        self._last_log = (clock(), 0)
        self._ahead: Request | None = None  # the next batch's read, sent, reply not yet read
        self._closing = False
        # Entries per read: about --batch-size records' worth, from the records per entry seen
        # (at once up, slower down). The first read takes at most FIRST_READ entries (a backlog
        # of batch entries starts with a bounded batch); after single-record entries a burst
        # of batch entries can make one batch of up to --batch-size entries.
        self._read_count = min(settings.batch_size, FIRST_READ)
        self._per_entry = settings.batch_size / self._read_count

    def start(self) -> None:
        """Take the SQLite writer lock, if the database is a SQLite file: one writer per file."""
        path = sqlite_path(self.settings.db_url)
        if path is not None and self._lock is None:
            self._lock = WriterLock(path)
            self._lock.acquire()

    def run_once(self) -> int:
        """Read (or retry) one batch, store it, acknowledge it; returns how many entries it took."""
        if not self._group_ready:
            self.stream.ensure_group()
            self._last_error = self._last_error or self.stream.last_error()
            self._group_ready = True
        self._acknowledge()  # a batch stored before Redis failed
        started = self.clock()
        batch = self._batch = self._batch or self._next_batch()
        if not batch:
            return 0
        if len(batch) >= self._read_count:
            self._read_ahead()  # a backlog: fetch the next batch while this one is written
        taken = len(batch.records) + len(batch.dead)
        refused = self.store.write(batch.records)
        batch.refuse(refused)
        self._batch, self._unacked = None, batch
        self._acknowledge()
        log_dead_letters(batch.dead)
        stored = self.store.added
        self.counters.records += taken
        self.counters.stored += stored
        self.counters.dead += len(batch.dead)
        self.counters.batches += 1
        if self.observer is not None:
            self.observer.batch_done(self.clock() - started, stored, len(batch.dead))
        return len(batch)

    def _acknowledge(self) -> None:
        if self._unacked is None:
            return
        held = self.stream.finish(self._unacked.ids, self._unacked.dead + self._held)
        if held and not self._held:
            log.warning(
                "redis is out of memory: %d dead letters wait, their records pending, until it "
                "has room again",
                len(held),
            )
        self._unacked, self._held = None, held

    def _next_batch(self) -> Batch:
        """The batch read ahead, if there is one, else a fresh read; decoded."""
        ahead, self._ahead = self._ahead, None
        entries = self.stream.receive(ahead) if ahead is not None else self._read()
        limits, most = self.settings.limits, self.settings.max_deliveries
        batch = Batch.decode(entries, limits, most, self._last_error)
        if batch.ids:  # batch entries hold many records: read about --batch-size records
            per_entry = (len(batch.records) + len(batch.dead)) / len(batch.ids)
            self._per_entry = max(1.0, per_entry, self._per_entry / 16)  # up at once, down slower
            self._read_count = max(1, int(self.settings.batch_size / self._per_entry))
        return batch

    def _read_ahead(self) -> None:
        """Ask Redis for the next batch now; its reply is read after this batch is committed
        and acknowledged, so the read overlaps the database's work. Never more than one batch
        ahead, and nothing read ahead is acknowledged before its own transaction commits."""
        if self._ahead is not None or self._closing or self._reading_pending:
            return  # own pending entries are re-read from the start until acknowledged
        if self.clock() >= self._next_claim:
            return  # claims are due: the next read goes through ``_read``
        self._ahead = self.stream.request_new(self._read_count)

    def _read(self) -> list[Entry]:
        """Own pending entries first (after a restart or a claim), then stale ones of others,
        then new ones."""
        size = self._read_count
        if self._reading_pending:
            entries = self.stream.read_pending(size)
            if entries:
                return entries
            self._reading_pending = False
        now = self.clock()
        if now >= self._next_claim:
            claimed = self.stream.claim_stale(self.settings.claim_idle, size)
            if self.stream.claim_scan_done:
                self._next_claim = now + max(self.settings.claim_idle, 1.0)
            if claimed:
                self._reading_pending = True
                return self.stream.read_pending(size)
        return self.stream.read_new(size, self.settings.max_wait)

    def run(self, stop: threading.Event) -> None:
        """Repeat ``run_once`` until ``stop`` is set; back off while a server is down. Ends
        early (ConfigError) only when Redis refuses the configuration itself."""
        self.start()
        log.info("collector started: %s", self.settings.describe())
        backoff = Backoff()
        try:
            while not stop.is_set():
                try:
                    self.run_once()
                    backoff.reset()
                    self._recovered()
                except DatabaseUnavailable as exc:
                    self._observe_failure("database")
                    self._failed(f"database unavailable: {exc}", backoff, stop)
                except REDIS_ERRORS as exc:
                    self._redis_failed(exc, backoff, stop)
                self.log_progress()
        finally:
            self.close()
        log.info(
            "collector stopped: %d records, %d stored, %d dead letters, %d batches",
            self.counters.records,
            self.counters.stored,
            self.counters.dead,
            self.counters.batches,
        )

    def _observe_failure(self, kind: str) -> None:
        if self.observer is not None:
            self.observer.batch_failed(kind)

    def _redis_failed(self, exc: Exception, backoff: Backoff, stop: threading.Event) -> None:
        self._observe_failure("redis")
        fault = redis_fault(exc)
        if fault == "config":
            url = mask_url(self.settings.redis_url)
            raise ConfigError(f"redis at {url} refused the collector: {exc}") from None
        self._reading_pending = True  # a lost XREADGROUP reply left entries pending
        if fault == "nogroup":
            self._group_ready = False
            log.warning(
                "consumer group %r of %s was gone (Redis restarted without persistence, or the "
                "stream was deleted): re-creating it; records queued before may have been lost "
                "inside Redis",
                self.stream.group,
                self.settings.queue,
            )
            return
        self._failed(f"redis unavailable: {exc}", backoff, stop)

    def _failed(self, error: str, backoff: Backoff, stop: threading.Event) -> None:
        """Log, publish (for ``status``) and wait before the same batch is tried again."""
        now = time.time()
        failure = self.failure or Failure(now, 0, error)
        failure.attempts, failure.error = failure.attempts + 1, error
        self.failure, self._last_error = failure, error
        delay = backoff.next()
        log.warning("%s; retrying in %.1f s (attempt %d)", error, delay, failure.attempts)
        self._publish(failure)
        stop.wait(delay)

    def _recovered(self) -> None:
        if self.failure is not None:
            log.info("recovered after %d failed attempts", self.failure.attempts)
            self.failure = None
            self._publish(None)

    def _publish(self, failure: Failure | None) -> None:
        with contextlib.suppress(*REDIS_ERRORS):  # Redis may be what fails: the log tells
            self.stream.report(None if failure is None else vars(failure))

    def log_progress(self) -> None:
        """Every 10 s (by the injected clock): the rate line, or why the batch keeps failing."""
        now = self.clock()
        since, done_then = self._last_log
        if now - since < RATE_LOG_SECONDS:
            return
        done = self.counters.records - done_then
        self._last_log = (now, self.counters.records)
        if self.failure is not None:
            log.warning(
                "batch failing for %.0f s (%d attempts): %s",
                time.time() - self.failure.since,
                self.failure.attempts,
                self.failure.error,
            )
        elif done:
            log.info(
                "%.0f records/s, %d batches, %d dead letters, lag %d (stream incl. pending)",
                done / (now - since),
                self.counters.batches,
                self.counters.dead,
                self.stream.length(),
            )

    def close(self) -> None:
        """Shut down in order: store a batch read ahead, acknowledge what is committed (so a
        restart does not redeliver it), then release the lock, the engine and the Redis pool."""
        self._store_read_ahead()
        try:
            self._acknowledge()
        except REDIS_ERRORS as exc:  # stays pending: redelivered, and _id dedupes it
            log.warning("could not acknowledge the last batch (%s)", exc)
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self.engine.dispose()
        self.client.close()

    def _store_read_ahead(self) -> None:
        """At shutdown, store a batch already read ahead (unless the batch before it is still
        failing); whatever is not stored stays pending in Redis for the next start."""
        self._closing = True
        if self._ahead is not None and self._batch is None:
            try:
                self.run_once()
            except Exception as exc:  # shutting down: release everything below regardless
                left = len(self._batch) if self._batch is not None else 0
                log.warning("left %d records pending for the next start (%s)", left, exc)
        if self._ahead is not None:  # the batch before it still fails: both stay pending
            self.stream.drop(self._ahead)
            self._ahead = None
