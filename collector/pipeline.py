"""``collector run --pipeline``: reading and writing in two processes, so that on two cores the
Redis read and decode of the next batch overlaps the database's insert and commit of this one.

This process reads (collector.reader / collector.shards: XREADGROUP, decode, validate) and
acknowledges; the writer process (collector.pipeline_writer, a fresh interpreter) holds the
SQLite lock and the sink, and tells this one each batch it committed. Every guarantee of the
single-process collector holds: a batch is acknowledged here only after the writer said it
committed; at most MAX_IN_FLIGHT batches are handed and not yet acknowledged, and a new one is
read while others are in flight only when it is the reply of a read ahead (new entries only, so
no re-read of pending entries can meet one in flight); a batch the database refuses is retried
after this process's backoff, and nothing more is read meanwhile. If either process dies, the
other ends (this one exits non-zero); what was not acknowledged stays pending and is
redelivered, and ``_id`` drops what had committed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import redis

from collector.batch import Batch
from collector.daemon import Collector
from collector.deadlog import log_dead_letters
from collector.errors import (
    AlreadyRunning,
    CommandFailed,
    ConfigError,
    DatabaseUnavailable,
)
from collector.observer import Observer
from collector.pipeline_wire import STOP, batch_frame, pack, settings_frame, unpack
from collector.reader import Reader
from collector.settings import Settings
from collector.sink import Refused
from workers.cluster import REDIS_ERRORS
from workers.record import Record

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 2  # batches handed to the writer and not yet acknowledged: one written, one next
STOP_TIMEOUT = 30.0  # s the writer gets to close after STOP before it is killed
ERRORS = {cls.__name__: cls for cls in (AlreadyRunning, ConfigError, DatabaseUnavailable)}
ROOT = str(Path(__file__).resolve().parent.parent)  # where this collector package was imported
BOOT = (  # the writer: ROOT's collector.pipeline_writer, ROOT first unless already on the path
    "import sys; root = sys.argv.pop(1); sys.path[:0] = [] if root in sys.path else [root]; "
    "from collector.pipeline_writer import main; sys.exit(main(sys.argv[1:]))"
)


class WriterProcess:
    """The writer process, seen from the reader: start it, hand it batches, hear what committed.
    A sink for collector.daemon (``write`` hands one batch and waits for it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.added = 0  # rows the last batch waited for by ``write`` added
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self._seq = 0

    def start(self) -> None:
        """Start the writer and wait until it holds the lock and its sink (or raise its error,
        as the single-process collector would have raised it). Its environment has no
        COLLECTOR_* variable: the settings, passwords included, come over the socket. It runs
        this process's own collector package (BOOT, ``-P``): never a ``collector`` folder in
        the working directory (another user's, say), never another installed copy."""
        ours, theirs = socket.socketpair()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTOR_")}
        argv = [sys.executable, "-P", "-c", BOOT, ROOT, str(theirs.fileno())]
        with theirs:
            self.proc = subprocess.Popen(
                [*argv, str(os.getpid())], pass_fds=[theirs.fileno()], env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            )  # fmt: skip
        self.conn = Connection(ours.detach())
        root = logging.getLogger("collector")
        verbose = root.getEffectiveLevel() <= logging.DEBUG if root.handlers else None
        self.conn.send_bytes(settings_frame(self.settings, verbose))
        frame = self.receive(None)
        if frame is not None and frame[0] == "error":
            self.stop()
            raise ERRORS.get(frame[1], CommandFailed)(frame[2])

    def hand(self, records: list[Record]) -> int:
        """Hand a batch's records to the writer; returns its sequence number."""
        self._seq += 1
        self._send(batch_frame(self._seq, records))
        return self._seq

    def retry(self) -> None:
        """Have the writer try the batch that failed again."""
        self._send(pack(["retry"]))

    def _send(self, data: bytes) -> None:
        assert self.conn is not None
        try:
            self.conn.send_bytes(data)
        except OSError:
            raise self._died() from None

    def receive(self, timeout: float | None) -> list[Any] | None:
        """The writer's next frame, waiting up to ``timeout`` s (None: until it comes); None if
        none came. CommandFailed when the writer process has ended."""
        assert self.conn is not None
        try:
            if not self.conn.poll(timeout):
                return None
            return unpack(self.conn.recv_bytes())
        except (EOFError, OSError):
            raise self._died() from None

    def check(self) -> None:
        """CommandFailed if the writer process has ended."""
        if self.proc is not None and self.proc.poll() is not None:
            raise self._died()

    def _died(self) -> CommandFailed:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        how = f"killed by {signal.Signals(-code).name}" if code and code < 0 else f"exit {code}"
        return CommandFailed(
            f"the writer process ended ({how}); records not acknowledged stay pending and are "
            "stored at the next start"
        )

    def write(self, records: list[Record]) -> Refused:
        """Hand ``records`` and wait for their commit (DatabaseUnavailable: it failed and the
        writer waits for retry or stop)."""
        seq = self.hand(records)
        frame = self.receive(None)
        assert frame is not None and frame[1] == seq, frame
        if frame[0] == "failed":
            raise DatabaseUnavailable(frame[2])
        self.added = frame[2]
        return [(i, reason) for i, reason in frame[3]]

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        """Tell the writer to stop (it releases its sink, then the lock) and wait for it."""
        self.stop()

    def stop(self) -> None:
        if self.proc is None or self.conn is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):  # a writer that is ending has closed its end
                self.conn.send_bytes(STOP)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.conn.close()
        self.conn = None


@dataclass
class Handed:
    """A batch the writer holds: its sequence number, the batch, when its read began."""

    seq: int
    batch: Batch
    started: float


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
            sink=self.writer,
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
        batch = self.reader.next_batch()
        if not batch:
            return 0
        self._handed.append(Handed(self.writer.hand(batch.records), batch, started))
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
        batch = handed.batch
        taken = len(batch.records) + len(batch.dead)
        batch.refuse([(i, reason) for i, reason in frame[3]])
        self.writer.added = frame[2]
        self._count(taken, len(batch.dead), handed.started)  # committed: count it, acked or not
        log_dead_letters(batch.dead)
        self._committed.append(batch)

    def _acknowledge(self) -> None:
        """Every committed batch, oldest first (one a Redis error stopped waits for the next
        pass); also the one the Collector's own ``run_once`` stored at shutdown."""
        if self._unacked is not None:
            self._committed.append(self._unacked)
            self._unacked = None
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
            while self._handed and not self._failing and self.writer.alive:
                self._take_news(wait=True)
            if self.reader.ahead and not self._handed and self.writer.alive:
                super().run_once()
        except Exception as exc:  # shutting down: release everything below regardless
            left = sum(len(h.batch) for h in self._handed) + len(self._batch or ())
            log.warning("left %d entries pending for the next start (%s)", left, exc)
        try:
            self._acknowledge()
        except REDIS_ERRORS as exc:  # stays pending: redelivered, and _id dedupes it
            log.warning("could not acknowledge the last batches (%s)", exc)
        self.writer.stop()
        self.reader.close()
