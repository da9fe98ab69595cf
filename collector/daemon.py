"""Where reader and sink meet: ``run_once`` does one batch, ``run`` repeats it with backoff.

What to read next is the reader's (collector.reader, collector.shards); where the records go
is the sink's (collector.sink, collector.store). A batch is acknowledged only after the
transaction holding it has committed, and counted as soon as it has; if the database is
unavailable the same batch is retried and nothing more is read (never one batch ahead).
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

from collector.arrays.sink import ArraySink
from collector.batch import Batch
from collector.db import make_engine, sqlite_path
from collector.deadlog import log_dead_letters
from collector.errors import ConfigError, DatabaseUnavailable
from collector.heap import gc_paused
from collector.lock import WriterLock
from collector.observer import Observer
from collector.reader import Reader
from collector.settings import Settings
from collector.shards import ShardedReader
from collector.sink import Sink
from collector.store import Schema, Store
from collector.stream import GROUP, redis_fault
from workers.cluster import REDIS_ERRORS
from workers.urls import masked

log = logging.getLogger(__name__)
RATE_LOG_SECONDS = 10.0


@dataclass
class Counters:
    """What the collector has done since it started."""

    records: int = 0  # records taken: stored + dead (a batch entry counts its records)
    stored: int = 0  # rows committed (counted at the commit, not at the acknowledgement)
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


def make_sink(
    settings: Settings, engine: sa.Engine | None = None, declared: sa.MetaData | None = None
) -> Sink:
    """Where batches are written: the SQL store on ``engine`` (else one built for the database),
    with --arrays the HDF5 array sink in front of it (arrays into one file, rows to the store)."""
    store = Store(engine or make_engine(settings.db_url), Schema(declared))
    return ArraySink(store, settings.arrays) if settings.arrays else store


def writer_lock(settings: Settings, pid: int | None = None) -> WriterLock | None:
    """The SQLite writer lock, taken, when the database is a SQLite file (one writer per file;
    AlreadyRunning names the holder: ``pid``, else this process); None for other databases."""
    path = sqlite_path(settings.db_url)
    if path is None:
        return None
    lock = WriterLock(path, pid)
    lock.acquire()
    return lock


class Collector:
    """Drains the queue into the database: reads through a Reader, writes through a Sink.
    Builds no connection until ``start`` (``client`` and ``engine`` may be given)."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: redis.Redis | None = None,
        engine: sa.Engine | None = None,
        declared: sa.MetaData | None = None,
        clock: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
        reader: Reader | None = None,
        sink: Sink | None = None,
    ) -> None:
        self.reader: Reader = reader or ShardedReader(settings, client=client, clock=clock)
        self.settings = settings
        self.store: Sink = sink or make_sink(settings, engine, declared)
        self.clock = clock
        self.observer = observer  # told of every batch and failed attempt (metrics)
        self.counters = Counters()
        self.failure: Failure | None = None
        self._batch: Batch | None = None  # read, not yet stored
        self._unacked: Batch | None = None  # stored, not yet acknowledged
        self._lock: WriterLock | None = None
        self._last_log = (clock(), 0)

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        """New settings apply from the next read on (the reader reads by them too)."""
        self._settings = self.reader.settings = settings

    def start(self) -> None:
        """Take the SQLite writer lock, if the database is a SQLite file (one writer per file),
        and build the reader's client; a start that fails releases what the collector holds
        (the lock, the sink's files and connections), so a process that goes on keeps none."""
        try:
            if self._lock is None:
                self._lock = writer_lock(self.settings)
            self.reader.start()
        except BaseException:
            self._release()
            raise

    @gc_paused  # a batch's records die with it: collections in between would be wasted
    def run_once(self) -> int:
        """Read (or retry) one batch, store it, acknowledge it; returns how many entries it took."""
        self._acknowledge()  # a batch stored before Redis failed
        started = self.clock()
        batch = self._batch = self._batch or self.reader.next_batch()
        if not batch:
            return 0
        batch.decode(self.settings.limits)  # once: a batch retried is decoded already
        taken = len(batch.records) + len(batch.dead)
        batch.refuse(self.store.write(batch.records))
        self._batch, self._unacked = None, batch
        self._count(taken, self.store.added, len(batch.dead), started)  # committed: count it
        log_dead_letters(batch.dead)  # once a batch, before an acknowledgement that may fail
        self._acknowledge()
        return len(batch)

    def _count(self, taken: int, stored: int, dead: int, started: float) -> None:
        self.counters.records += taken
        self.counters.stored += stored
        self.counters.dead += dead
        self.counters.batches += 1
        if self.observer is not None:
            self.observer.batch_done(self.clock() - started, stored, dead)

    def _acknowledge(self) -> None:
        if self._unacked is not None:
            self.reader.finish(self._unacked)
            self._unacked = None

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
            url = masked(self.settings.redis_url)
            raise ConfigError(f"redis at {url} refused the collector: {exc}") from None
        if fault == "nogroup":  # the reader creates it again at the next read
            log.warning(
                "consumer group %r of %s was gone (Redis restarted without persistence, or the "
                "stream was deleted): re-creating it; records queued before may have been lost "
                "inside Redis",
                GROUP,
                self.settings.queue,
            )
            return
        self._failed(f"redis unavailable: {exc}", backoff, stop)

    def _failed(self, error: str, backoff: Backoff, stop: threading.Event) -> None:
        """Log, publish (for ``status``) and wait before the same batch is tried again."""
        now = time.time()
        failure = self.failure or Failure(now, 0, error)
        failure.attempts, failure.error = failure.attempts + 1, error
        self.failure = failure
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
            self.reader.report(None if failure is None else vars(failure))

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
                self.reader.backlog(),
            )

    def close(self) -> None:
        """Shut down in order: stop reading ahead; store a batch already read ahead (unless the
        one before it still fails: then both stay pending for the next start); acknowledge what
        is committed, so a restart does not redeliver it; then release the lock, the sink's
        connections and the reader's (a read ahead not stored stays pending)."""
        self.reader.stop()
        if self.reader.ahead and self._batch is None:
            try:
                self.run_once()
            except Exception as exc:  # shutting down: release everything below regardless
                left = len(self._batch) if self._batch is not None else 0
                log.warning("left %d records pending for the next start (%s)", left, exc)
        try:
            self._acknowledge()
        except REDIS_ERRORS as exc:  # stays pending: redelivered, and _id dedupes it
            log.warning("could not acknowledge the last batch (%s)", exc)
        self._release()

    def _release(self) -> None:
        """The SQLite lock, the sink's connections (and files), the reader's client."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self.store.close()
        self.reader.close()
