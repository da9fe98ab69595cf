"""Where stream and store meet: ``run_once`` does one batch, ``run`` repeats it with backoff.

A batch is acknowledged only after the transaction holding it has committed; if the database
is unavailable the same batch is retried and nothing more is read (never one batch ahead).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import redis
import sqlalchemy as sa

from collector.db import make_engine, sqlite_path
from collector.errors import DatabaseUnavailable
from collector.lock import WriterLock
from collector.schema import Schema
from collector.settings import Settings
from collector.store import Store
from collector.stream import Entry, Stream
from workers.errors import DecodeError
from workers.record import Record

log = logging.getLogger(__name__)
RATE_LOG_SECONDS = 10.0
Decoded = tuple[list[Record], dict[int, bytes], list[tuple[bytes, str]]]  # records, raw, dead


@dataclass
class Counters:
    """What the collector has done since it started."""

    records: int = 0
    stored: int = 0
    dead: int = 0
    batches: int = 0


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
    ) -> None:
        self.settings = settings
        self.client = client or redis.Redis.from_url(settings.redis_url)
        self.engine = engine or make_engine(settings.db_url)
        self.stream = Stream(self.client, settings.queue, settings.consumer)
        self.store = Store(self.engine, Schema(declared))
        self.clock = clock
        self.counters = Counters()
        self._inflight: list[Entry] = []
        self._unacked: tuple[list[bytes], list[tuple[bytes, str]]] | None = None
        self._reading_pending = True
        self._group_ready = False
        self._next_claim = 0.0
        self._lock: WriterLock | None = None
        self._last_log = (clock(), 0)
        self._reader: ThreadPoolExecutor | None = None
        self._ahead: Future[tuple[list[Entry], Decoded]] | None = None
        self._decoded: Decoded | None = None
        self._closing = False

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
            self._group_ready = True
        if self._unacked is not None:
            self.stream.finish(*self._unacked)
            self._unacked = None
        if not self._inflight:
            self._inflight, self._decoded = self._next_batch()
        entries = self._inflight
        if not entries:
            return 0
        if self._decoded is None:
            self._decoded = self._decode(entries)
        records, raw_of, dead = self._decoded
        if len(entries) >= self.settings.batch_size:
            self._read_ahead()  # a backlog: fetch the next batch while this one is written
        rejected = self.store.write(records)
        dead = dead + [(raw_of[id(rec)], reason) for rec, reason in rejected]
        self._inflight, self._decoded = [], None
        self._unacked = ([e.id for e in entries], dead)
        self.stream.finish(*self._unacked)
        self._unacked = None
        self.counters.records += len(entries)
        self.counters.stored += len(records) - len(rejected)
        self.counters.dead += len(dead)
        self.counters.batches += 1
        return len(entries)

    def _next_batch(self) -> tuple[list[Entry], Decoded | None]:
        """The batch read (and decoded) ahead, if there is one, else a fresh read; an error of
        the reader thread surfaces here."""
        ahead, self._ahead = self._ahead, None
        return ahead.result() if ahead is not None else (self._read(), None)

    def _read_and_decode(self) -> tuple[list[Entry], Decoded]:
        entries = self._read()
        return entries, self._decode(entries)

    def _read_ahead(self) -> None:
        """Start reading and decoding the next batch in the reader thread (it runs while this
        batch's database round trips wait): never more than one batch ahead, and nothing read
        ahead is acknowledged before its own transaction commits."""
        if self._ahead is not None or self._closing or self._reading_pending:
            return  # own pending entries are re-read from the start until acknowledged
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="collector-read")
        self._ahead = self._reader.submit(self._read_and_decode)

    def _store_read_ahead(self) -> None:
        """At shutdown, store a batch already read ahead (unless the batch before it is still
        failing); whatever is not stored stays pending in Redis for the next start."""
        self._closing = True
        if self._ahead is None or self._inflight:
            return
        try:
            self.run_once()
        except Exception as exc:  # shutting down: release everything below regardless
            log.warning("left %d records pending for the next start (%s)", len(self._inflight), exc)

    def _read(self) -> list[Entry]:
        """Own pending entries first (after a restart), then stale ones of others, then new ones."""
        size = self.settings.batch_size
        if self._reading_pending:
            entries = self.stream.read_pending(size)
            if entries:
                return entries
            self._reading_pending = False
        now = self.clock()
        if now >= self._next_claim:
            entries = self.stream.claim_stale(self.settings.claim_idle, size)
            if self.stream.claim_scan_done:
                self._next_claim = now + max(self.settings.claim_idle, 1.0)
            if entries:
                return entries
        return self.stream.read_new(size, self.settings.max_wait)

    def _decode(self, entries: list[Entry]) -> Decoded:
        records: list[Record] = []
        raw_of: dict[int, bytes] = {}
        dead: list[tuple[bytes, str]] = []
        limits = self.settings.limits
        for entry in entries:
            if entry.raw is None:
                continue  # deleted before we read it: nothing to store
            if entry.problem is not None:
                dead.append((entry.raw, entry.problem))
                continue
            try:
                rec = Record.decode(entry.raw, limits)
            except DecodeError as exc:
                dead.append((entry.raw, exc.reason))
                continue
            records.append(rec)
            raw_of[id(rec)] = entry.raw
        return records, raw_of, dead

    def run(self, stop: threading.Event) -> None:
        """Repeat ``run_once`` until ``stop`` is set; back off while a server is down."""
        self.start()
        log.info("collector started: %s", self.settings.describe())
        backoff = Backoff()
        try:
            while not stop.is_set():
                try:
                    self.run_once()
                    backoff.reset()
                except DatabaseUnavailable as exc:
                    delay = backoff.next()
                    log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                    stop.wait(delay)
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    self._reading_pending = True  # a lost XREADGROUP reply left entries pending
                    delay = backoff.next()
                    log.warning("redis unavailable (%s); retrying in %.1f s", exc, delay)
                    stop.wait(delay)
                self._log_rate()
        finally:
            self.close()
        log.info(
            "collector stopped: %d records, %d stored, %d dead letters, %d batches",
            self.counters.records, self.counters.stored, self.counters.dead,
            self.counters.batches,
        )  # fmt: skip

    def _log_rate(self) -> None:
        now = self.clock()
        since, done_then = self._last_log
        if now - since < RATE_LOG_SECONDS:
            return
        done = self.counters.records - done_then
        self._last_log = (now, self.counters.records)
        if done:
            log.info(
                "%.0f records/s, %d batches, %d dead letters, lag %d (stream incl. pending)",
                done / (now - since), self.counters.batches, self.counters.dead,
                self.stream.length(),
            )  # fmt: skip

    def close(self) -> None:
        """Store a batch read ahead, acknowledge what is committed, then release the lock, the
        engine and the Redis pool."""
        self._store_read_ahead()
        if self._reader is not None:
            self._reader.shutdown()
            self._reader = None
        if self._unacked is not None:
            try:
                self.stream.finish(*self._unacked)
                self._unacked = None
            except redis.RedisError as exc:  # stays pending: redelivered, and _id dedupes it
                log.warning("could not acknowledge the last batch (%s)", exc)
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self.engine.dispose()
        self.client.close()
