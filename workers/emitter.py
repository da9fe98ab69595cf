"""The Emitter: turns results into wire records (one a stream entry, or many in a batch entry,
buffered or not) and hands their bytes to its Delivery (workers/delivery.py), which XADDs them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis

from workers.buffer import SendBuffer
from workers.checks import MAX_ID_LENGTH
from workers.delivery import Delivery
from workers.entry import MAX_ENTRY_BYTES, Packed, check_size, encode_entries, packed
from workers.errors import EncodeError
from workers.jobinfo import current_job_id, elapsed, host_name, peak_rss
from workers.lifecycle import renew_after_fork
from workers.record import Record, new_id, pack_data
from workers.settings import EmitterSettings
from workers.urls import masked

BUFFER_BYTES = 8 * MAX_ENTRY_BYTES  # a buffer holding this much data is sent at once


def as_data(result: Any) -> dict[str, Any]:
    """A result as column -> value: a mapping as it is, anything else under ``result``."""
    if isinstance(result, Mapping):
        return dict(result)
    return {"result": result}


def _data_bytes(item: Packed) -> int:
    return len(item.data)


def _checked(key: Any) -> str:
    """``key`` as a record id, or EncodeError."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_ID_LENGTH:
        raise EncodeError(f"key must be a non-empty string of at most {MAX_ID_LENGTH} chars")
    return key


class Emitter(Delivery):
    """Sends records to one queue on one Redis; cheap to call, safe to use after ``fork``.

    Pass ``client`` (e.g. a fakeredis client in tests) or let it connect lazily to
    ``redis_url`` (default: COLLECTOR_REDIS_URL) on first use. While Redis is unreachable a
    send is retried for ``emit_timeout`` seconds (COLLECTOR_EMIT_TIMEOUT), then the records go
    to the local spool in ``spool_dir`` (COLLECTOR_SPOOL_DIR) and are re-sent before the next
    send, at exit, or by ``collector spool flush``. A URL from the connection file of
    ``collector serve`` is checked on every connection and followed when serve moves. With
    ``buffer=N`` records are sent N per round trip, or ``flush_interval`` seconds after the
    first is queued, on ``flush()``/``close()``, at normal exit and when a multiprocessing
    worker ends; a killed process loses its unsent buffer. ``shards`` (default:
    COLLECTOR_SHARDS, else what the collector published, else 1) spreads records over the
    queue's shards (workers.shards).
    """

    def __init__(
        self,
        redis_url: str | None = None,
        queue: str | None = None,
        *,
        client: redis.Redis | None = None,
        emit_timeout: float | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        buffer: int = 0,
        flush_interval: float = 1.0,
        shards: int | None = None,
    ) -> None:
        env = EmitterSettings.from_env(
            redis_url, queue, emit_timeout=emit_timeout, spool_dir=spool_dir, shards=shards
        )
        super().__init__(env, client, queue_given=bool(queue), sleep=sleep)
        self._buffer = SendBuffer(
            self._send_packed, buffer, flush_interval, most_bytes=BUFFER_BYTES, weigh=_data_bytes
        ) if buffer else None  # fmt: skip
        renew_after_fork(self)

    def __repr__(self) -> str:
        return f"Emitter(redis_url={masked(self.redis_url)!r}, queue={self.queue!r})"

    def record(self, result: Any, *, table: str = "results", key: str | None = None) -> Record:
        """Build the wire record for ``result`` without sending it."""
        return Record(
            id=_checked(key) if key is not None else new_id(),
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
        """Send one result; returns its record id once Redis has it (buffered: once queued).
        Unbuffered it travels alone (wire version 1); buffered, in a batch entry (version 2)."""
        if self._buffer is None:
            rec = self.record(result, table=table, key=key)
            self._send([check_size(rec.encode(), table)])
            return rec.id
        rid = _checked(key) if key is not None else new_id()
        data = check_size(pack_data(as_data(result), table), table)  # fails here, in the caller
        job, stamp = current_job_id(), time.time()
        self._buffer.add([Packed(table, host_name(), os.getpid(), job, rid, stamp,
                                 elapsed(), peak_rss(), data)])  # fmt: skip
        return rid

    def emit_many(self, results: Iterable[Any], *, table: str = "results") -> list[str]:
        """Send many results in one round trip, as batch entries (wire version 2) of up to
        1,000 records and 8 MiB; returns their record ids. They share one emit time and source
        (one call, one moment, one job)."""
        source = (time.time(), host_name(), os.getpid(), current_job_id(), elapsed(), peak_rss())
        items = [packed(Record(new_id(), table, as_data(r), *source)) for r in results]
        if self._buffer is None:
            self._send(encode_entries(items))
        else:
            self._buffer.add(items)
        return [item.id for item in items]

    # Buffered mode (``buffer=N``): emit and emit_many queue packed records; SendBuffer hands
    # them to ``_send_packed`` on size, on its timer, on ``flush()``, on ``close()`` and at exit.

    def _send_packed(self, items: list[Packed]) -> None:
        self._send(encode_entries(items))

    def flush(self) -> None:
        """Send what the buffer holds now (a no-op without ``buffer``)."""
        if self._buffer is not None:
            self._buffer.flush()

    def close(self) -> None:
        """Flush the buffer, then close the delivery (a last re-send of the spool, the pool)."""
        if self._buffer is not None:
            self._buffer.close()
        super().close()
