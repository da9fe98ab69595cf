"""A Redis at maxmemory (noeviction) refuses XADD with OOM: emit treats that like an outage,
retrying with capped backoff for emit_timeout, then spooling; the spool is re-sent once Redis
takes records again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from faults.servers import RedisServer
from workers import Emitter
from workers.entry import decode_records
from workers.spool import Spool, parse

FILL = 20_000  # bytes per filler key


@pytest.fixture
def full_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server with a memory limit (lowered by ``fill``) and no eviction."""
    server = RedisServer(
        tmp_path / "redis", "--maxmemory", "64mb", "--maxmemory-policy", "noeviction"
    )
    server.start()
    yield server
    server.stop()


def fill(client: redis.Redis) -> list[str]:
    """Fill the server with 3 MB, then lower maxmemory 1 MB below what it uses (a margin that the
    server's own housekeeping, such as shrinking query buffers, cannot cross): it refuses every
    write until the returned keys are deleted."""
    keys = [f"fill:{i}" for i in range(150)]
    for key in keys:
        client.set(key, b"x" * FILL)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used - (1 << 20))
    with pytest.raises(redis.OutOfMemoryError):  # really full: even a tiny XADD is refused
        client.xadd("fill:probe", {"m": b"x"})
    return keys


def spooled_ids(directory: Path) -> list[str]:
    return [
        rec.id
        for path in Spool(directory).files()
        for _, payload in parse(path.read_bytes())[0]
        for rec in decode_records(payload)
    ]


def stream_ids(client: redis.Redis, queue: str) -> list[str]:
    return [r.id for _, fields in client.xrange(queue) for r in decode_records(fields[b"m"])]


def test_an_oom_refusal_is_retried_then_spooled_and_resent_once_memory_is_free(
    full_redis: RedisServer, queue: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(full_redis.url())
    keys = fill(client)
    delays: list[float] = []
    spool_dir = tmp_path / "spool"
    emitter = Emitter(full_redis.url(), queue, emit_timeout=2, spool_dir=spool_dir,
                      sleep=delays.append)  # fmt: skip

    rid = emitter.emit({"x": 1}, key="during-oom")  # returns: no exception reaches the job

    assert rid == "during-oom"
    assert delays[:3] == [0.05, 0.1, 0.2]  # retried with the backoff of an outage
    assert spooled_ids(spool_dir) == ["during-oom"]
    assert client.exists(queue) == 0

    client.delete(*keys)  # memory is free again
    emitter.emit({"x": 2}, key="after")
    assert stream_ids(client, queue) == ["during-oom", "after"]  # the spool is re-sent first
    assert Spool(spool_dir).files() == []
    emitter.close()
    client.close()


def test_an_oom_refusal_is_retried_until_memory_is_freed(
    full_redis: RedisServer, queue: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(full_redis.url())
    keys = fill(client)
    delays: list[float] = []

    def sleep(delay: float) -> None:  # memory is freed during the third wait
        delays.append(delay)
        if len(delays) == 3:
            client.delete(*keys)

    spool_dir = tmp_path / "spool"
    emitter = Emitter(full_redis.url(), queue, emit_timeout=60, spool_dir=spool_dir, sleep=sleep)
    emitter.emit({"x": 1}, key="waited")
    assert delays == [0.05, 0.1, 0.2]
    assert stream_ids(client, queue) == ["waited"]
    assert Spool(spool_dir).files() == []
    emitter.close()
    client.close()
