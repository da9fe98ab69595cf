"""The names of one queue's Redis keys and of the stream field a record travels in: the one
place that spells them (emitters, the collector, every command and the docs' ACL rules use it).

    <queue>            the stream of a queue with one shard; with N > 1 shards also read, since
                       emitters send there while they know no shard count
    <queue>:{i}        the stream of shard i (a Redis Cluster hash tag: one slot a shard)
    <stream>:dead      a stream's dead letters, fields m, reason, ts (same slot as the stream)
    <queue>:health     a hash: consumer -> its failing batch (JSON), shown by ``status``
    <queue>:shards     the shard count the collector published; emitters follow it
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIELD = "m"  # the stream field holding a record's bytes, in a queue and in its dead letters
REASON, TS = "reason", "ts"  # a dead letter's other fields: why, and when (Unix seconds)
DEAD, HEALTH, COUNT = "dead", "health", "shards"
_GLOB = re.compile(r"([*?\[\]\\])")  # what a Redis ACL key pattern would read as a wildcard


def glob_escaped(name: str) -> str:
    """``name`` as an ACL key pattern matching that name alone (``*``, ``?``, ``[``, ``]`` and
    a backslash escaped)."""
    return _GLOB.sub(r"\\\1", name)


@dataclass(frozen=True, slots=True)
class QueueNames:
    """Every key of the queue ``queue``."""

    queue: str

    @property
    def health(self) -> str:
        """The hash of failing batches by consumer."""
        return f"{self.queue}:{HEALTH}"

    @property
    def count(self) -> str:
        """The key holding the published shard count."""
        return f"{self.queue}:{COUNT}"

    def shard(self, index: int) -> str:
        """The stream of shard ``index`` of a sharded queue."""
        return f"{self.queue}:{{{index}}}"

    def streams(self, shards: int) -> list[str]:
        """Every shard's stream in shard order: ``queue`` itself with one shard."""
        return [self.queue] if shards == 1 else [self.shard(i) for i in range(shards)]

    def read_streams(self, shards: int) -> list[str]:
        """Every stream a collector with ``shards`` reads: the shards and, with more than one,
        ``queue`` itself (emitters send there while they know no count)."""
        return self.streams(shards) + ([self.queue] if shards > 1 else [])

    @staticmethod
    def dead(stream: str) -> str:
        """The dead-letter stream of ``stream`` (its hash tag too: the same cluster slot)."""
        return f"{stream}:{DEAD}"

    def key_patterns(self) -> list[str]:
        """ACL key patterns (``~...``) covering every key above."""
        queue = glob_escaped(self.queue)
        return [queue, f"{queue}:*"]

    def job_patterns(self) -> list[str]:
        """ACL key patterns an emitter needs: the streams it sends to and the published count."""
        queue = glob_escaped(self.queue)
        return [queue, f"{queue}:{{*}}", glob_escaped(self.count)]
