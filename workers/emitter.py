"""The Emitter: turns results into wire records and XADDs them to the queue stream."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from workers.errors import EncodeError
from workers.jobinfo import current_job_id, elapsed, host_name, peak_rss
from workers.record import MAX_ID_LENGTH, Record, new_id
from workers.settings import EmitterSettings, mask_url

FIELD = "m"


def as_data(result: Any) -> dict[str, Any]:
    """A result as column -> value: a mapping as it is, anything else under ``result``."""
    if isinstance(result, Mapping):
        return dict(result)
    return {"result": result}


class Emitter:
    """Sends records to one queue on one Redis; cheap to call, safe to use after ``fork``.

    Pass ``client`` (e.g. a fakeredis client in tests) or let it connect lazily to
    ``redis_url`` (default: COLLECTOR_REDIS_URL) on first use.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        queue: str | None = None,
        *,
        client: redis.Redis | None = None,
    ) -> None:
        env = EmitterSettings.from_env()
        self.redis_url = redis_url or env.redis_url
        self.queue = queue or env.queue
        self._client = client
        self._owns_client = client is None

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
        """Send one result; returns its record id once Redis has it."""
        rec = self.record(result, table=table, key=key)
        self.client.xadd(self.queue, {FIELD: rec.encode()})
        return rec.id

    def emit_many(self, results: Iterable[Any], *, table: str = "results") -> list[str]:
        """Send many results in one pipelined round trip; returns their record ids."""
        records = [self.record(r, table=table) for r in results]
        payloads = [r.encode() for r in records]
        pipe = self.client.pipeline(transaction=False)
        for payload in payloads:
            pipe.xadd(self.queue, {FIELD: payload})
        pipe.execute()
        return [r.id for r in records]

    def close(self) -> None:
        """Release the connection pool if this emitter built it."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
