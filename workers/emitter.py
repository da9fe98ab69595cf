"""The Emitter: turns results into wire records and XADDs them to the queue stream."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from workers.buffer import SendBuffer
from workers.errors import EncodeError
from workers.jobinfo import current_job_id, elapsed, host_name, peak_rss
from workers.record import MAX_ID_LENGTH, Record, new_id
from workers.settings import EmitterSettings, mask_url
from workers.xadd import XAdd

FIELD = "m"


def as_data(result: Any) -> dict[str, Any]:
    """A result as column -> value: a mapping as it is, anything else under ``result``."""
    if isinstance(result, Mapping):
        return dict(result)
    return {"result": result}


class Emitter:
    """Sends records to one queue on one Redis; cheap to call, safe to use after ``fork``.

    Pass ``client`` (e.g. a fakeredis client in tests) or let it connect lazily to
    ``redis_url`` (default: COLLECTOR_REDIS_URL) on first use. With ``buffer=N`` records are
    sent N per round trip, or ``flush_interval`` seconds after the first is queued, on
    ``flush()``/``close()`` and at normal exit; a killed process loses its unsent buffer.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        queue: str | None = None,
        *,
        client: redis.Redis | None = None,
        buffer: int = 0,
        flush_interval: float = 1.0,
    ) -> None:
        env = EmitterSettings.from_env()
        self.redis_url = redis_url or env.redis_url
        self.queue = queue or env.queue
        self._client = client
        self._owns_client = client is None
        self._xadd = XAdd(self.queue, FIELD)
        self._buffer = SendBuffer(self._send, buffer, flush_interval) if buffer else None

    def __repr__(self) -> str:
        return f"Emitter(redis_url={mask_url(self.redis_url)!r}, queue={self.queue!r})"

    @property
    def client(self) -> redis.Redis:
        """The Redis client, built on first use (redis-py's pool reconnects after a fork)."""
        if self._client is None:
            self._client = redis.Redis.from_url(self.redis_url)
        return self._client

    def record(self, result: Any, *, table: str = "results", key: str | None = None) -> Record:
        """Build the wire record for ``result`` without sending it."""
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_ID_LENGTH):
            raise EncodeError(f"key must be a non-empty string of at most {MAX_ID_LENGTH} chars")
        return Record(
            id=key if key is not None else new_id(),
            table=table,
            data=as_data(result),
            ts=time.time(),
            host=host_name(),
            pid=os.getpid(),
            job=current_job_id(),
            elapsed=elapsed(),
            maxrss=peak_rss(),
        )

    def emit(self, result: Any, *, table: str = "results", key: str | None = None) -> str:
        """Send one result; returns its record id once Redis has it (buffered: once queued)."""
        rec = self.record(result, table=table, key=key)
        self._queue([rec.encode()])
        return rec.id

    def emit_many(self, results: Iterable[Any], *, table: str = "results") -> list[str]:
        """Send many results in one round trip; returns their record ids. They share one emit
        time and source (one call, one moment, one job)."""
        source = (time.time(), host_name(), os.getpid(), current_job_id(), elapsed(), peak_rss())
        records = [Record(new_id(), table, as_data(r), *source) for r in results]
        self._queue([r.encode() for r in records])
        return [r.id for r in records]

    def _send(self, payloads: list[bytes]) -> None:
        """One round trip: XADD every payload."""
        self._xadd.send(self.client, payloads)

    # Buffered mode (``buffer=N``): emit and emit_many queue payloads; SendBuffer sends them
    # through ``_send`` on size, on its timer, on ``flush()``, on ``close()`` and at exit.

    def _queue(self, payloads: list[bytes]) -> None:
        if self._buffer is None:
            self._send(payloads)
        else:
            self._buffer.add(payloads)

    def flush(self) -> None:
        """Send what the buffer holds now (a no-op without ``buffer``)."""
        if self._buffer is not None:
            self._buffer.flush()

    def close(self) -> None:
        """Flush the buffer, then release the connection pool if this emitter built it."""
        if self._buffer is not None:
            self._buffer.close()
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
