"""The canary: a key SET to a counter every few milliseconds, with when each SET was sent and
acknowledged. After Redis restarts, the value it came back with bounds what its fsync policy
(``appendfsync everysec``) lost: the append-only file is a prefix of the commands Redis ran, so
a write acknowledged before the surviving canary write was sent survived too, and only writes
that may have run after it (a loss window, up to the kill) can be missing through Redis."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import redis

KEY = "soak:canary"
EVERY = 0.004  # s between writes


@dataclass(frozen=True)
class Window:
    """Writes Redis may have run in (start, end) and then lost: ``end`` is the kill."""

    start: float
    end: float
    lost_writes: int  # canary writes acknowledged and lost

    def overlaps(self, begin: float, finish: float) -> bool:
        return begin < self.end and finish > self.start


class Canary:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.sent: dict[int, float] = {}  # counter -> when its SET was sent (acknowledged ones)
        self.last_acked = 0
        self.paused = threading.Event()
        self.stopped = threading.Event()
        self.idle = threading.Event()
        self.windows: list[Window] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.started = time.time()

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        n = 0
        while not self.stopped.is_set():
            if self.paused.is_set():
                self.idle.set()
                time.sleep(EVERY)
                continue
            self.idle.clear()
            n += 1
            sent = time.time()
            try:
                self.client.set(KEY, n)
            except redis.RedisError:
                pass
            else:
                self.sent[n] = sent
                self.last_acked = n
            time.sleep(EVERY)

    def pause(self) -> None:
        """Stop writing (wait until the loop has seen it): Redis is about to restart."""
        self.paused.set()
        self.idle.wait(2)

    def after_restart(self, killed_at: float) -> str:
        """Read what Redis came back with, record the loss window if any, resume writing."""
        acked = self.last_acked
        try:
            raw = self.client.get(KEY)
        finally:
            self.paused.clear()
        kept = int(raw) if raw is not None else 0
        if kept >= acked:
            return f"canary {kept}, nothing lost"
        start = self.sent.get(kept, self.started)
        self.windows.append(Window(start, killed_at, acked - kept))
        return f"canary {kept} of {acked}: Redis lost {killed_at - start:.3f} s of writes"

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(2)
        self.client.close()
