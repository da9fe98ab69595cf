"""Redis memory per queued record, for both wire versions: a backlog of ``count`` records sent
one entry each (``emit``) or in batch entries of 1,000 (``emit_many``), measured with MEMORY
USAGE on the stream key (SAMPLES 0: every node counted) and INFO memory before and after."""

from __future__ import annotations

from typing import Any

import redis

from scripts.bench.common import fill


def per_record(redis_url: str, queue: str, count: int, batched: bool) -> dict[str, Any]:
    """Bytes of Redis memory per queued record; the queue is deleted afterwards."""
    client = redis.Redis.from_url(redis_url)
    try:
        before = int(client.info("memory")["used_memory"])
        fill(
            redis_url, queue, count, f"fill (memory, {'v2' if batched else 'v1'})", batched=batched
        )
        used = int(client.info("memory")["used_memory"]) - before
        usage: Any = client.memory_usage(queue, samples=0)
        entries = int(client.xlen(queue))
    finally:
        client.delete(queue)
        client.close()
    return {
        "records": count,
        "seconds": 0.0,
        "rate": 0.0,
        "entries": entries,
        "bytes_per_record": int(usage) / count,
        "info_bytes_per_record": used / count,
    }
