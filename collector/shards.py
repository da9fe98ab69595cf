"""The reader of a whole queue: every stream that holds its records, each read by its own
``StreamReader`` (collector.reader), composed behind the same ``Reader`` protocol.

Which streams (``streams_to_read``): those of this collector's ``--shards`` (workers.names),
those of the count published before it (emitters that read it still send there until they
follow the new one), and any other shard stream holding records or dead letters (left by a
collector with another count). So a change of ``--shards`` strands nothing; the collector then
publishes its own count, which emitters follow.

``ShardedReader`` reads the streams in turn, starting one further each time, so none starves: a
pass without waiting first, then, when every stream is empty, a pass that gives each an equal
part of ``--max-wait``. A batch comes from one stream and is finished on it; each stream keeps
its own pending re-reads, claims and read counts, and every command touches one stream's keys
(one Redis Cluster slot). A stream with a batch taken and not yet finished is read again only
through its read ahead (new entries), never by a read that may re-read its pending entries: so
a pipelined collector (collector.pipeline) can read while a batch is still being written.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis

from collector.batch import Batch
from collector.reader import StreamReader
from collector.settings import Settings
from collector.stream import reader_client, report_health
from workers.names import QueueNames
from workers.shards import MAX_SHARDS, published

log = logging.getLogger(__name__)
RESCAN = 10.0  # s: how often a running collector looks for streams a peer's count fills


def known_shards(client: redis.Redis, queue: str, given: int | None = None) -> int:
    """The queue's shard count for a command: ``given`` (--shards / COLLECTOR_SHARDS), else
    what the collector published, else 1."""
    return given if given is not None else published(client, QueueNames(queue)) or 1


def known_streams(client: redis.Redis, queue: str, given: int | None = None) -> list[str]:
    """Every stream a command looks at for ``queue``: ``streams_to_read`` at the count
    ``known_shards`` finds."""
    return streams_to_read(client, QueueNames(queue), known_shards(client, queue, given))


def streams_to_read(
    client: redis.Redis, names: QueueNames, shards: int, before: int | None = None
) -> list[str]:
    """The streams of ``shards`` (workers.names.read_streams), then those of the count
    ``before`` published, then every other shard stream that holds records or dead letters."""
    found = names.read_streams(shards)
    for stream in names.read_streams(before or 1):
        if stream not in found:
            found.append(stream)
    return found + holding(client, names, set(found))


def holding(client: redis.Redis, names: QueueNames, known: set[str]) -> list[str]:
    """The shard streams (of any count up to MAX_SHARDS) other than ``known`` whose stream or
    dead letters hold entries, in shard order. One EXISTS first: usually none exists at all."""
    others = [names.shard(i) for i in range(MAX_SHARDS) if names.shard(i) not in known]
    keys = [key for stream in others for key in (stream, names.dead(stream))]
    if not client.exists(*keys):
        return []
    pipe = client.pipeline(transaction=False)  # one key a command: one cluster slot each
    for key in keys:
        pipe.xlen(key)
    lengths = pipe.execute()
    return [s for i, s in enumerate(others) if lengths[2 * i] or lengths[2 * i + 1]]


class ShardedReader:
    """The queue's streams read by one consumer as one queue (a collector.reader ``Reader``).
    Which streams is found at the first ``next_batch`` (Redis may be down at ``start``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: redis.Redis | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shards: list[StreamReader] = []
        self.settings, self.client, self.clock = settings, client, clock
        self.names = QueueNames(settings.queue)
        self._by_name: dict[str, StreamReader] = {}
        self._next = 0  # the stream the next pass starts at
        self._rescan_after = 0.0  # when to look again for streams to read (``_rescan``)
        self._ahead: StreamReader | None = None  # the stream a batch is read ahead on
        self._unfinished: Counter[str] = Counter()  # batches taken, not finished, per stream
        self._closing = False

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self._settings = settings
        for shard in self.shards:
            shard.settings = settings

    def start(self) -> None:
        if self.client is None:
            self.client = reader_client(self.settings.redis_url)

    def _open(self) -> list[StreamReader]:
        """A StreamReader on every stream to read, each with its consumer group; then this
        collector's shard count, published for emitters."""
        self.start()
        client, names, count = self.client, self.names, self.settings.shards
        assert client is not None
        before = published(client, names)
        shards = [self._part(name) for name in streams_to_read(client, names, count, before)]
        for shard in shards:
            shard.prepare()
        with contextlib.suppress(redis.exceptions.OutOfMemoryError):  # emitters may set it too
            client.set(names.count, count)
        extra = [s.name for s in shards[len(names.read_streams(count)) :]]
        if extra:
            log.warning(
                "%s said %s shards, this collector has %d: it also reads %s (records sent with "
                "another count; emitters follow the new count within a minute)",
                names.count, before, count, ", ".join(extra),
            )  # fmt: skip
        self.shards, self._by_name = shards, {s.name: s for s in shards}
        self._rescan_after = self.clock() + RESCAN
        return shards

    def _rescan(self) -> None:
        """Read the streams found since the start: those of the count published now (a peer
        collector with more shards published it, and emitters follow it even after that peer
        stopped) and any other shard stream that came to hold records."""
        client, names, count = self.client, self.names, self.settings.shards
        assert client is not None
        self._rescan_after = self.clock() + RESCAN
        now = published(client, names)
        new = [s for s in streams_to_read(client, names, count, now) if s not in self._by_name]
        if not new:
            return
        added = [self._part(name) for name in new]
        for shard in added:
            shard.prepare()
        log.warning(
            "%s now says %s shards, this collector has %d: it also reads %s (records sent by "
            "another collector's count)",
            names.count, now, count, ", ".join(new),
        )  # fmt: skip
        self.shards = self.shards + added
        self._by_name.update((s.name, s) for s in added)

    def _part(self, stream: str) -> StreamReader:
        """The reader of one of the queue's streams, over this reader's client."""
        return StreamReader(
            self.settings, stream, client=self.client, clock=self.clock, auto_ahead=False,
            owns_client=False,
        )  # fmt: skip

    def _order(self) -> list[StreamReader]:
        """The streams starting at the rotating cursor, which moves on by one."""
        start, count = self._next, len(self.shards)
        self._next = (start + 1) % count
        return [self.shards[(start + i) % count] for i in range(count)]

    def next_batch(self) -> Batch:
        shards = self.shards or self._open()
        if self.clock() >= self._rescan_after and not self._closing:
            self._rescan()
            shards = self.shards
        batch = self._take(shards)
        if batch:
            self._unfinished[batch.stream] += 1
        if batch and self._by_name[batch.stream].full(batch) and not self._closing:
            after = self._order()[0]  # a backlog: the next stream in turn reads ahead
            after.read_ahead()
            self._ahead = after if after.ahead else None
        return batch

    def _take(self, shards: list[StreamReader]) -> Batch:
        """The batch read ahead; else new entries from the first stream in turn that has any;
        when none has, wait on each in turn for its share of ``--max-wait``."""
        if self._ahead is not None:
            shard, self._ahead = self._ahead, None
            batch = shard.next_batch(0)  # the reply of its read ahead
            if batch or len(shards) == 1:  # one empty stream must not end a drain of others
                return batch
        shards = [s for s in shards if not self._unfinished[s.name]]
        if not shards:
            return Batch()
        if len(shards) == 1 and len(self.shards) == 1:
            return shards[0].next_batch()
        order = [s for s in self._order() if s in shards]
        for shard in order:
            batch = shard.next_batch(0)
            if batch:
                return batch
        share = self.settings.max_wait / len(shards)
        if share > 0:
            for shard in order:
                batch = shard.next_batch(share)
                if batch:
                    return batch
        return batch

    def finish(self, batch: Batch) -> None:
        """On the batch's own stream; then dead letters other streams hold for a full Redis."""
        self._by_name[batch.stream].finish(batch)
        self._unfinished[batch.stream] -= 1
        for shard in self.shards:
            if shard.held and shard.name != batch.stream:
                shard.finish(None)

    def stop(self) -> None:
        self._closing = True
        for shard in self.shards:
            shard.stop()

    @property
    def ahead(self) -> bool:
        return self._ahead is not None

    def report(self, failure: dict[str, Any] | None) -> None:
        for shard in self.shards:
            if failure is not None:
                shard.last_error = failure["error"]
        self.start()
        assert self.client is not None
        report_health(self.client, self.names, self.settings.consumer, failure)

    def backlog(self) -> int:
        return sum(shard.backlog() for shard in self.shards)

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
        self._ahead = None
        if self.client is not None:
            self.client.close()
