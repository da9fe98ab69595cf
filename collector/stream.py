"""The only Redis code of the collector: consumer group, reading, claiming, dead letters, acks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack
import redis

from workers.emitter import FIELD

GROUP = "collector"
_FIELD = FIELD.encode()


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry: its id and record bytes; ``raw`` is None for an entry already deleted.

    ``problem`` says why an entry cannot be a record before decoding (no ``m`` field).
    """

    id: bytes
    raw: bytes | None
    problem: str | None = None


def _entry(mid: bytes, fields: dict[bytes, bytes] | None) -> Entry:
    if not fields:
        return Entry(mid, None)
    raw = fields.get(_FIELD)
    if raw is None:
        return Entry(mid, msgpack.packb(fields), f"stream entry has no field {FIELD!r}")
    return Entry(mid, raw)


def _entries(messages: list[Any]) -> list[Entry]:
    return [_entry(mid, fields) for mid, fields in messages]


class Stream:
    """A queue stream read through the ``collector`` consumer group by one named consumer."""

    def __init__(self, client: redis.Redis, queue: str, consumer: str, group: str = GROUP) -> None:
        self.client = client
        self.queue = queue
        self.dead_key = f"{queue}:dead"
        self.consumer = consumer
        self.group = group
        self._claim_cursor = b"0-0"

    def ensure_group(self) -> None:
        """Create the group at the start of the stream (id 0), so earlier records are kept."""
        try:
            self.client.xgroup_create(self.queue, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read_pending(self, count: int) -> list[Entry]:
        """This consumer's delivered-but-unacknowledged entries (after a restart), oldest first."""
        reply: Any = self.client.xreadgroup(
            self.group, self.consumer, {self.queue: "0"}, count=count
        )
        return _entries(reply[0][1]) if reply else []

    def read_new(self, count: int, block_seconds: float) -> list[Entry]:
        """Up to ``count`` new entries, waiting at most ``block_seconds`` for the first."""
        block = max(1, int(block_seconds * 1000)) if block_seconds > 0 else None
        reply: Any = self.client.xreadgroup(
            self.group, self.consumer, {self.queue: ">"}, count=count, block=block
        )
        return _entries(reply[0][1]) if reply else []

    def claim_stale(self, idle_seconds: float, count: int) -> list[Entry]:
        """Take over entries other consumers left unacknowledged for ``idle_seconds`` or longer."""
        reply = self.client.xautoclaim(
            self.queue,
            self.group,
            self.consumer,
            min_idle_time=int(idle_seconds * 1000),
            start_id=self._claim_cursor,
            count=count,
        )
        self._claim_cursor = reply[0]
        return _entries(reply[1])

    @property
    def claim_scan_done(self) -> bool:
        """True once XAUTOCLAIM has walked the whole pending list (its cursor is back at 0-0)."""
        return self._claim_cursor in (b"0-0", "0-0")

    def length(self) -> int:
        """Entries in the stream: acknowledged ones are deleted, so this is the backlog."""
        return int(self.client.xlen(self.queue))

    def finish(self, ids: list[bytes], dead: list[tuple[bytes, str]]) -> None:
        """Dead-letter ``dead`` (raw, reason), then XACK and XDEL ``ids``, atomically, one trip."""
        if not ids and not dead:
            return
        pipe = self.client.pipeline(transaction=True)
        now = f"{time.time():.6f}"
        for raw, reason in dead:
            pipe.xadd(self.dead_key, {"m": raw, "reason": reason, "ts": now})
        if ids:
            pipe.xack(self.queue, self.group, *ids)
            pipe.xdel(self.queue, *ids)
        pipe.execute()

    def stats(self) -> dict[str, Any]:
        """Stream length, pending count, consumers and dead-letter count, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.queue)
        pipe.xlen(self.dead_key)
        pipe.exists(self.queue)
        length, dead, exists = pipe.execute()
        pending, consumers = 0, []
        if exists:
            try:
                summary = self.client.xpending(self.queue, self.group)
                pending = int(summary["pending"])
                info = self.client.xinfo_consumers(self.queue, self.group)
                consumers = [
                    {
                        "name": _text(c["name"]),
                        "pending": int(c["pending"]),
                        "idle_ms": int(c["idle"]),
                    }
                    for c in info
                ]
            except redis.ResponseError as exc:  # no group yet: nothing pending
                if "NOGROUP" not in str(exc):
                    raise
        return {"queue": int(length), "pending": pending, "dead": int(dead), "consumers": consumers}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of the dead-letter stream: the original record bytes and why they were refused.

    ``raw`` is None when the entry has no ``m`` field (written by hand, say): nothing to retry.
    """

    id: str
    raw: bytes | None
    reason: str
    ts: float | None


def _dead_letter(mid: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    """A dead letter from one XRANGE reply item."""
    reason = fields.get(b"reason", b"")
    try:
        ts: float | None = float(fields.get(b"ts", b""))
    except ValueError:
        ts = None
    return DeadLetter(_text(mid), fields.get(_FIELD), reason.decode(errors="replace"), ts)


class DeadLetters:
    """The dead-letter stream ``<queue>:dead``: read it, put entries back on the queue, purge it."""

    def __init__(self, client: redis.Redis, queue: str) -> None:
        self.client = client
        self.queue = queue
        self.key = f"{queue}:dead"

    def count(self) -> int:
        """How many dead letters there are."""
        return int(self.client.xlen(self.key))

    def head(self, limit: int) -> list[DeadLetter]:
        """The ``limit`` oldest dead letters."""
        reply: Any = self.client.xrange(self.key, count=limit)
        return [_dead_letter(mid, f) for mid, f in reply]

    def get(self, ids: list[str]) -> dict[str, DeadLetter]:
        """The dead letters with these ids that exist, by id, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for mid in ids:
            pipe.xrange(self.key, mid, mid)
        found = [reply[0] for reply in pipe.execute() if reply]
        return {letter.id: letter for letter in (_dead_letter(m, f) for m, f in found)}

    def batches(self, size: int) -> Iterator[list[DeadLetter]]:
        """Every dead letter present now, ``size`` at a time, oldest first.

        Entries added while iterating (a retried record refused again) are not visited, so a
        retry of everything ends even when the records still fail.
        """
        newest: Any = self.client.xrevrange(self.key, count=1)
        if not newest:
            return
        last, start = newest[0][0], b"-"
        while True:
            page: Any = self.client.xrange(self.key, start, last, count=size)
            if not page:
                return
            yield [_dead_letter(mid, f) for mid, f in page]
            start = b"(" + page[-1][0]

    def retry(self, letters: list[DeadLetter]) -> int:
        """Put each letter's original bytes back on the queue and delete it from the dead stream,
        atomically (MULTI), in one round trip; returns how many went back."""
        movable = [(letter.id, letter.raw) for letter in letters if letter.raw is not None]
        if not movable:
            return 0
        pipe = self.client.pipeline(transaction=True)
        for _mid, raw in movable:
            pipe.xadd(self.queue, {FIELD: raw})
        pipe.xdel(self.key, *(mid for mid, _raw in movable))
        pipe.execute()
        return len(movable)

    def purge(self) -> int:
        """Delete the dead-letter stream; returns how many entries it held (counted atomically)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.xlen(self.key)
        pipe.delete(self.key)
        count, _deleted = pipe.execute()
        return int(count)
