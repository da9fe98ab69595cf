"""The pipelined collector's writer process, seen from its reader: started as a fresh
interpreter running this very package's collector.pipeline_writer, handed batches over a socket
pair (their entries as read, for it to decode), heard from when they commit, stopped in order
(killed only if it does not end)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from collector.errors import AlreadyRunning, CommandFailed, ConfigError, DatabaseUnavailable
from collector.pipeline_wire import STOP, batch_frame, pack, settings_frame, unpack
from collector.settings import Settings

STOP_TIMEOUT = 30.0  # s the writer gets to close after STOP before it is killed
ERRORS = {cls.__name__: cls for cls in (AlreadyRunning, ConfigError, DatabaseUnavailable)}
ROOT = str(Path(__file__).resolve().parent.parent)  # where this collector package was imported
BOOT = (  # the writer: ROOT's collector.pipeline_writer, ROOT first unless already on the path
    "import sys; root = sys.argv.pop(1); sys.path[:0] = [] if root in sys.path else [root]; "
    "from collector.pipeline_writer import main; sys.exit(main(sys.argv[1:]))"
)


class WriterProcess:
    """The writer process, seen from the reader: start it, hand it batches, hear what committed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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

    def hand(self, ids: list[bytes], raws: list[bytes]) -> int:
        """Hand a batch's entries (ids, record bytes) to the writer; returns its sequence
        number."""
        self._seq += 1
        self._send(batch_frame(self._seq, ids, raws))
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

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Tell the writer to stop (it releases its sink, then the lock) and wait for it."""
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
