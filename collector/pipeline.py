"""``collector run --pipeline``: reading and writing in two processes, so that on two cores the
Redis read of the next batch overlaps the decoding and the database's work on this one.

This process reads (collector.reader / collector.shards: XREADGROUP, the delivery limit),
hands each batch's entries undecoded to the writer process (collector.pipeline_writer, a fresh
interpreter: decode, validate, schema, insert, commit; it holds the SQLite lock and the sink),
and, once the writer says the batch committed, writes its dead letters and acknowledges it. The
work per record is so split about evenly between the two. Every guarantee of the
single-process collector holds: a batch is acknowledged here only after the writer said it
committed, each dead letter written before its entry's acknowledgement; at most MAX_IN_FLIGHT
batches are handed and not yet acknowledged, and a new one is read while others are in flight
only when it is the reply of a read ahead (new entries only, so no re-read of pending entries
can meet one in flight); a batch the database refuses is retried after this process's backoff,
and nothing more is read meanwhile. If either process dies, the other ends (this one exits
non-zero); what was not acknowledged stays pending and is redelivered, and ``_id`` drops what
had committed.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from collector.batch import Batch
from collector.daemon import Collector
from collector.deadlog import log_dead_letters
from collector.errors import (
    DatabaseUnavailable,
)
from collector.observer import Observer
from collector.pipeline_wire import dead_of
from collector.reader import Reader
from collector.settings import Settings
from collector.sink import Refused
from collector.writer_process import WriterProcess
from workers.cluster import REDIS_ERRORS
from workers.record import Record

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 2  # batches handed to the writer and not yet acknowledged: one written, one next


@dataclass
class Handed:
    """A batch the writer holds: its sequence number, the batch, when its read began."""

    seq: int
    batch: Batch
    started: float


class WrittenElsewhere:
    """The sink of the reader process, which writes nothing: each batch goes to the writer
    process, and what its commit added comes with the writer's news."""

    added = 0

    def write(self, records: list[Record]) -> Refused:
        raise AssertionError("the reader process hands its batches to the writer process")

    def close(self) -> None:
        """Nothing to release: the writer process holds the database."""


NOTHING_WRITTEN_HERE = WrittenElsewhere()


class PipelinedCollector(Collector):
    """The Collector whose sink is a writer process: ``run_once`` reads and hands a batch and
    takes what committed (acknowledging it) without waiting for the write, up to MAX_IN_FLIGHT
    batches ahead; ``run``, the backoff and the failure reports are the Collector's."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: redis.Redis | None = None,
        clock: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
        reader: Reader | None = None,
        writer: WriterProcess | None = None,
    ) -> None:
        self.writer = writer or WriterProcess(settings)
        super().__init__(
            settings, client=client, clock=clock, observer=observer, reader=reader,
            sink=NOTHING_WRITTEN_HERE,
        )  # fmt: skip
        self._handed: deque[Handed] = deque()
        self._committed: deque[Batch] = deque()  # committed, not yet acknowledged, in order
        self._failing = False  # the oldest handed batch failed: read nothing until it commits
        self._retry_due = False  # ... and the writer waits for the word to try it again

    def start(self) -> None:
        """The writer first (it takes the SQLite lock: a second collector on the file fails
        before it reads anything), then the reader's client."""
        self.writer.start()
        try:
            self.reader.start()
        except BaseException:
            self.writer.stop()
            raise

    def run_once(self) -> int:
        """Acknowledge what committed; wait for the writer until the bound and the read policy
        allow a read; read and hand one batch (a read ahead that came back empty while a
        batch is in flight: again, once that batch is settled); then take the writer's news,
        waiting for it when nothing more could be read next. Returns how many entries this
        pass read (0: a read with nothing in flight found nothing new)."""
        self.writer.check()  # an idle queue sends the writer nothing: ask the process itself
        self._acknowledge()
        if self._retry_due:
            self.writer.retry()
            self._retry_due = False
        taken = self._settle_and_read()
        if not taken and self._handed:  # the streams with a batch in flight were not read
            taken = self._settle_and_read()
        if self._handed:
            self._take_news(wait=not self._may_read())
        self._acknowledge()
        return taken

    def _settle_and_read(self) -> int:
        """Wait for the writer until a read is allowed, then read and hand one batch; returns
        its entries."""
        while self._handed and not self._may_read():
            self._take_news(wait=True)
            self._acknowledge()
        if not self._may_read():
            return 0
        started = self.clock()
        return self._hand(self.reader.next_batch(), started)

    def _hand(self, batch: Batch, started: float) -> int:
        """Hand ``batch``'s entries to the writer, undecoded (it decodes them); this process
        keeps only what acknowledging it needs. Returns its entries."""
        if not batch:
            return 0
        seq = self.writer.hand(batch.kept_ids, batch.kept_raws)
        batch.kept_ids, batch.kept_raws = [], []
        self._handed.append(Handed(seq, batch, started))
        return len(batch)

    def _may_read(self) -> bool:
        """Whether the next read may be handed now: within the bound, nothing failing or left
        unacknowledged, and with a batch in flight only the reply of a read ahead."""
        if self._failing or self._committed or len(self._handed) >= MAX_IN_FLIGHT:
            return False
        return not self._handed or self.reader.ahead

    def _take_news(self, wait: bool) -> None:
        """Every frame the writer has sent; with ``wait``, at least one (a commit or a
        failure). A failure raises DatabaseUnavailable for the Collector's backoff."""
        frame = self.writer.receive(None if wait else 0)
        while frame is not None:
            self._news(frame)
            frame = self.writer.receive(0) if self._handed else None

    def _news(self, frame: list[Any]) -> None:
        handed = self._handed[0]
        assert frame[1] == handed.seq, (frame, handed.seq)
        if frame[0] == "failed":
            self._failing = self._retry_due = True
            raise DatabaseUnavailable(frame[2])
        self._handed.popleft()
        self._failing = False
        _, _, added, taken, decoded, refused = frame
        batch = handed.batch
        taken += len(batch.dead)  # and those refused here, before decoding
        batch.add_decoded_dead(dead_of(decoded))
        batch.dead += dead_of(refused)
        self._count(taken, added, len(batch.dead), handed.started)  # committed: count it
        log_dead_letters(batch.dead)
        self._committed.append(batch)

    def _settle(self) -> None:
        """Wait for the writer's news of every batch handed (unless one fails)."""
        while self._handed and not self._failing and self.writer.alive:
            self._take_news(wait=True)

    def _acknowledge(self) -> None:
        """Every committed batch, oldest first (one a Redis error stopped waits for the next
        pass)."""
        while self._committed:
            self.reader.finish(self._committed[0])
            self._committed.popleft()

    def close(self) -> None:
        """Shut down in order: stop reading ahead; let the writer commit what it holds (unless
        a batch fails: then it and those after it stay pending) and store a batch read ahead;
        acknowledge what committed, so a restart does not redeliver it; stop the writer (it
        closes its sink, then releases the SQLite lock); then the reader's connections (a read
        ahead not stored stays pending)."""
        self.reader.stop()
        try:
            self._settle()
            if self.reader.ahead and not self._failing and self.writer.alive:
                self._acknowledge()
                self._hand(self.reader.next_batch(), self.clock())  # nothing more is read ahead
                self._settle()
        except Exception as exc:  # shutting down: release everything below regardless
            left = sum(len(h.batch) for h in self._handed)
            log.warning("left %d entries pending for the next start (%s)", left, exc)
        try:
            self._acknowledge()
        except REDIS_ERRORS as exc:  # stays pending: redelivered, and _id dedupes it
            log.warning("could not acknowledge the last batches (%s)", exc)
        self.writer.stop()
        self.reader.close()
