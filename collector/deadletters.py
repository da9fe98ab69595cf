"""A stream's dead letters (workers.names.QueueNames.dead) as the ``collector dead`` commands see
them: read them, put letters back on their stream after a fix, purge them. (Writing dead
letters is the collector's acknowledgement step, in collector.stream.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from redis.crc import key_slot

from collector.shards import known_streams
from collector.stream import text
from workers.cluster import is_cluster_client
from workers.names import FIELD, REASON, TS, QueueNames

_FIELD, _REASON, _TS = FIELD.encode(), REASON.encode(), TS.encode()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of the dead-letter stream: the original record bytes and why they were refused.

    ``raw`` is None when the entry has no ``m`` field (written by hand, say): nothing to retry.
    """

    id: str
    raw: bytes | None
    reason: str
    ts: float | None
    ts_text: str | None = None  # the ``ts`` field as stored (shown when it is no time)


def _dead_letter(mid: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    """A dead letter from one XRANGE reply item."""
    reason = fields.get(_REASON, b"")
    stored = fields.get(_TS)
    try:
        ts: float | None = float(stored or b"")
    except ValueError:
        ts = None
    shown = None if stored is None else stored.decode(errors="replace")
    return DeadLetter(text(mid), fields.get(_FIELD), reason.decode(errors="replace"), ts, shown)


class DeadLetters:
    """The dead letters of the stream ``queue``: read them, put entries back on that stream,
    purge them."""

    def __init__(self, client: redis.Redis, queue: str) -> None:
        self.client = client
        self.queue = queue
        self.key = QueueNames.dead(queue)

    def count(self) -> int:
        """How many dead letters there are."""
        return int(self.client.xlen(self.key))

    def head(self, limit: int) -> list[DeadLetter]:
        """The ``limit`` oldest dead letters."""
        reply: Any = self.client.xrange(self.key, count=limit)
        return [_dead_letter(mid, f) for mid, f in reply]

    def newest(self, offset: int, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, newest first, after skipping the ``offset`` newest (a
        page of a listing; the cost grows with ``offset``, which a page number keeps small)."""
        reply: Any = self.client.xrevrange(self.key, count=offset + limit)
        return [_dead_letter(mid, f) for mid, f in reply[offset:]]

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
        in one round trip, atomically (MULTI) where both keys are in one slot; returns how many
        went back. (On a Redis Cluster, ``<queue>`` and ``<queue>:dead`` without a hash tag are
        not: a failure between the two may leave a letter that was also put back, which the
        record id makes harmless.)"""
        movable = [(letter.id, letter.raw) for letter in letters if letter.raw is not None]
        if not movable:
            return 0
        atomic = not is_cluster_client(self.client) or (
            key_slot(self.queue.encode()) == key_slot(self.key.encode())
        )
        pipe = self.client.pipeline(transaction=atomic)
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


def shard_letters(client: redis.Redis, queue: str, shards: int | None = None) -> list[DeadLetters]:
    """The dead letters of every stream the collectors read (collector.shards.known_streams):
    ``shards`` if given, else the count the collector published. Each stream's letters go back
    onto that stream: one slot a command."""
    return [DeadLetters(client, name) for name in known_streams(client, queue, shards)]


def _order(letter: DeadLetter) -> tuple[int, int]:
    millis, _, seq = letter.id.partition("-")
    return int(millis), int(seq or 0)


def newest_of(shards: list[DeadLetters], offset: int, limit: int) -> list[tuple[str, DeadLetter]]:
    """(stream, letter) of up to ``limit`` dead letters over every shard, newest first by entry
    id (the Redis time it was written), after skipping the ``offset`` newest."""
    found = [(one.queue, letter) for one in shards for letter in one.newest(0, offset + limit)]
    found.sort(key=lambda pair: _order(pair[1]), reverse=True)
    return found[offset : offset + limit]
