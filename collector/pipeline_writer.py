"""The writer process of a pipelined collector: takes the SQLite writer lock, then decodes each
batch of entries the reader hands it (collector.batch: checks, dead letters), stores it
(schema, insert, commit) and says what committed and which records are dead letters; the
reader writes those and acknowledges the batch. Started by collector.pipeline (its BOOT runs
``main([FD, PPID])`` of the reader's own collector package).

It dies with the reader (PR_SET_PDEATHSIG on Linux, checked against its parent, as the signal
also comes when only the reader's starting thread ended; everywhere its receiving thread sees
the socket close and exits at once): what it had not committed stays pending in Redis, what it
had committed and the reader had not acknowledged is redelivered and dropped by ``_id``. SIGINT,
SIGTERM and SIGHUP (serve's) are the reader's to handle (it tells the writer to stop, in order).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import stat
import sys
import threading
from collections import deque
from multiprocessing.connection import Connection
from queue import SimpleQueue
from types import FrameType
from typing import Any

from collector import logs
from collector.batch import Batch
from collector.daemon import make_sink, writer_lock
from collector.errors import (
    RET_CONFIG,
    RET_FAILED,
    DatabaseUnavailable,
    library_errors,
    translate,
)
from collector.heap import gc_paused, waiting
from collector.lock import WriterLock
from collector.models import prepare_models
from collector.pipeline_wire import STOP, pack, settings_of, unpack
from collector.settings import Settings
from collector.sink import Sink

PR_SET_PDEATHSIG = 1
PARENT_GONE = signal.SIGUSR1  # what the kernel sends when the starting thread (or process) ends


def die_with_parent(parent: int) -> None:
    """Exit when the reader process ends, however it ends (Linux; a no-op elsewhere). The
    kernel signals when the thread that started this process ends, which need not be the
    reader's end: the handler exits only once this process has another parent."""

    def parent_gone(_signum: int, _frame: FrameType | None) -> None:
        if os.getppid() != parent:
            os._exit(RET_FAILED)

    signal.signal(PARENT_GONE, parent_gone)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, PARENT_GONE)
    if os.getppid() != parent:  # it ended before the request above took effect
        os._exit(RET_FAILED)


def receive(conn: Connection, inbox: SimpleQueue[bytes]) -> None:
    """The receiving thread: every frame into ``inbox`` until STOP, so the reader's sends never
    wait on the writer's commits (and the writer's replies never on the reader's sends). The
    socket closing without STOP means the reader is gone: exit at once."""
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            os._exit(RET_FAILED)
        inbox.put(data)
        if data == STOP:
            return


class Writer:
    """The decoder and store behind the socket: one batch at a time, in the order handed."""

    def __init__(self, settings: Settings, conn: Connection, reader: int) -> None:
        self.settings, self.conn, self.reader = settings, conn, reader
        self.inbox: SimpleQueue[bytes] = SimpleQueue()
        self._later: deque[list[Any]] = deque()  # batches handed while one was failing
        self._lock: WriterLock | None = None
        self._sink: Sink | None = None

    def open(self) -> None:
        """The lock first, naming the reader (SIGTERM stops the pair there; this process
        ignores it), then --models and the sink."""
        self._lock = writer_lock(self.settings, self.reader)
        models, db_url = self.settings.models, self.settings.db_url
        declared = prepare_models(models, db_url) if models else None
        self._sink = make_sink(self.settings, declared=declared)

    def send(self, frame: list[object]) -> None:
        self.conn.send_bytes(pack(frame))

    def _next(self) -> list[Any]:
        return self._later.popleft() if self._later else unpack(self.inbox.get())

    def serve(self) -> None:
        """Decode and store each batch handed, in order, until STOP."""
        while True:
            frame = self._next()
            if frame[0] != "batch" or not self._store(*frame[1:]):
                return  # STOP

    @gc_paused  # the batch's records die with it (collector.heap)
    def _store(self, seq: int, ids: list[bytes], raws: list[bytes]) -> bool:
        """Decode and store one batch and say so; a batch the database cannot take now is
        reported and kept, decoded, until the reader, after its backoff, says retry (False:
        it said stop)."""
        assert self._sink is not None
        batch = Batch(kept_ids=ids, kept_raws=raws)
        batch.decode(self.settings.limits)
        taken = len(batch.records) + len(batch.dead)
        while True:
            try:
                refused = self._sink.write(batch.records)
            except DatabaseUnavailable as exc:
                self.send(["failed", seq, str(exc)])
                with waiting():
                    if not self._wait_for_retry():
                        return False
                continue
            decoded = len(batch.dead)
            batch.refuse(refused)
            dead = batch.dead
            self.send(["done", seq, self._sink.added, taken, dead[:decoded], dead[decoded:]])
            return True

    def _wait_for_retry(self) -> bool:
        """True at "retry", False at STOP; batches handed meanwhile wait their turn."""
        while True:
            frame = unpack(self.inbox.get())
            if frame[0] == "batch":
                self._later.append(frame)
            else:
                return frame[0] == "retry"

    def close(self) -> None:
        """The sink's connections, then the lock (nothing is written after this)."""
        if self._sink is not None:
            self._sink.close()
        if self._lock is not None:
            self._lock.release()


def started_by_the_reader(argv: list[str]) -> tuple[int, int] | None:
    """The socket descriptor and the reader's pid from ``argv``, if they are what
    collector.pipeline passes (a socket, our parent); None otherwise."""
    try:
        fd, parent = map(int, argv)
        return (fd, parent) if stat.S_ISSOCK(os.fstat(fd).st_mode) else None
    except (ValueError, OSError):
        return None


def main(argv: list[str]) -> int:
    given = started_by_the_reader(argv)
    if given is None:
        print("collector.pipeline_writer is started by `collector run --pipeline`", file=sys.stderr)
        return RET_CONFIG
    fd, parent = given
    die_with_parent(parent)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    conn = Connection(fd)
    _, fields, verbose = unpack(conn.recv_bytes())
    if verbose is not None:
        logs.configure(verbose)
    writer = Writer(settings_of(fields), conn, parent)
    try:
        try:
            writer.open()
        except library_errors() as exc:
            error = translate(exc)
            writer.send(["error", type(error).__name__, str(error)])
            return RET_FAILED
        writer.send(["ready"])
        threading.Thread(target=receive, args=(conn, writer.inbox), daemon=True).start()
        try:
            writer.serve()
        except library_errors() as exc:  # the sink cannot go on (--arrays): one line, then end
            print(f"Error: {translate(exc)}", file=sys.stderr, flush=True)
            return RET_FAILED
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
