"""Buffered sending: records wait in memory and go to Redis many per round trip.

A buffer is flushed when it holds ``size`` payloads or ``most_bytes`` (as ``weigh`` counts
them: a few large records must not pile up in memory), ``interval`` seconds after its first
unsent payload (a daemon timer thread), on ``flush()``, at normal interpreter exit (``atexit``)
and when a multiprocessing worker ends (its finalizers). A process that is killed (SIGKILL,
SIGTERM without a handler, out of memory, a node failure) or leaves with ``os._exit`` loses what
is still buffered: use it where a rerun is cheap, or keep ``size`` and ``interval`` small.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from workers.lifecycle import ExitHook, renew_after_fork

log = logging.getLogger(__name__)
Send = Callable[[list[Any]], None]


class SendBuffer:
    """Collects payloads for ``send`` (one round trip per call) and flushes them in batches."""

    def __init__(
        self,
        send: Send,
        size: int,
        interval: float,
        *,
        most_bytes: int | None = None,
        weigh: Callable[[Any], int] = lambda _payload: 0,
    ) -> None:
        if size < 1:
            raise ValueError(f"buffer size must be at least 1, got {size}")
        if interval <= 0:
            raise ValueError(f"flush interval must be positive, got {interval}")
        self.size = size
        self.interval = interval
        self._send = send
        self._payloads: list[Any] = []
        self._most_bytes, self._weigh, self._bytes = most_bytes, weigh, 0
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._exit_hook = ExitHook(self._flush_at_exit, order=1)  # before the spool's
        renew_after_fork(self)

    def __len__(self) -> int:
        return len(self._payloads)

    def add(self, payloads: list[Any]) -> None:
        """Buffer ``payloads``; send the buffer at once when it reaches ``size``."""
        with self._lock:
            if self._thread is None:
                self._start()  # the first payload in this process: the timer and the exit hook
            was_empty = not self._payloads
            self._payloads.extend(payloads)
            if self._most_bytes is not None:
                self._bytes += sum(map(self._weigh, payloads))
            if len(self._payloads) >= self.size or self._over_bytes():
                self.flush()
            elif was_empty:
                self._wake.set()  # the timer sleeps only while the buffer is empty

    def flush(self) -> None:
        """Send everything buffered in one round trip; on failure it stays buffered and the
        error propagates (the timer retries later)."""
        with self._lock:
            if not self._payloads:
                return
            self._send(self._payloads)
            self._payloads, self._bytes = [], 0

    def _over_bytes(self) -> bool:
        return self._most_bytes is not None and self._bytes >= self._most_bytes

    def close(self) -> None:
        """Flush, stop the timer thread and forget the exit hook."""
        try:
            self.flush()
        finally:
            self._stop.set()
            self._wake.set()
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join()
            self._thread = None
            self._exit_hook.disarm()

    def after_fork_in_child(self) -> None:
        """In a forked child: drop the parent's payloads (the parent sends them), its timer
        (a thread the child does not have) and its lock (another parent thread may have held it
        at the fork)."""
        self._payloads, self._bytes = [], 0
        self._thread = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.RLock()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="collector-emit-flush", daemon=True)
        self._thread.start()
        self._exit_hook.arm()

    def _run(self) -> None:
        """Flush ``interval`` seconds after the buffer stops being empty; sleep while it is."""
        stop, wake = self._stop, self._wake
        while not stop.is_set():
            if not self._payloads:
                wake.wait()
                wake.clear()
                continue
            if stop.wait(self.interval):
                return
            try:
                self.flush()
            except Exception as exc:  # a timer thread must not die: it retries next interval
                log.warning("could not flush %d buffered records (%s)", len(self), exc)

    def _flush_at_exit(self) -> None:
        if not self._payloads:
            return
        try:
            self.flush()
        except Exception as exc:  # at exit there is no caller left to raise to
            log.error("lost %d buffered records at exit (%s)", len(self), exc)
