"""The collector's own numbers: draining a backlog, producers and collector together, emit cost."""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import time
from typing import Any

import redis
import sqlalchemy as sa

from scripts.bench.common import TABLE, count_rows, fill, read_line, result_data, start_child
from workers.emitter import Emitter
from workers.names import FIELD


def drain(
    redis_url: str, db_url: str, queue: str, count: int, batch: int, *, batched: bool = False,
    pipelined: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """A backlog of ``count`` records already in the stream, one entry each (as ``emit`` sends
    them) or in batch entries (``batched``, as ``emit_many`` sends them); the collector
    (``pipelined``: the reader and writer pair) runs until it has taken them all."""
    fill(redis_url, queue, count, "fill (drain)", batched=batched)
    child = start_child(redis_url, db_url, queue, count, batch, *_mode(pipelined))
    read_line(child)
    report = read_line(child)
    child.wait()
    stored, distinct = count_rows(db_url)
    return {
        "records": report["records"],
        "seconds": report["seconds"],
        "rate": report["records"] / report["seconds"],
        "batches": report["batches"],
        "peak_rss_mib": report["peak_rss_mib"],
        "stored": stored,
        "distinct": distinct,
        "dead": report["dead"],
    }


def _producer(redis_url: str, queue: str, count: int, offset: int, start: Any, out: Any) -> None:
    """One job process: ``workers.emit`` once per result; reports wall times and latencies."""
    os.environ["COLLECTOR_REDIS_URL"], os.environ["COLLECTOR_QUEUE"] = redis_url, queue
    import workers

    workers.reset()
    data = [result_data(offset + i) for i in range(count)]
    latencies = []
    clock = time.perf_counter_ns
    start.wait()
    first = time.time()
    for item in data:
        t = clock()
        workers.emit(item, table=TABLE)
        latencies.append(clock() - t)
    out.put((first, time.time(), latencies))


def _mode(pipelined: bool) -> tuple[str, ...]:
    return ("--pipeline",) if pipelined else ()


def end_to_end(
    redis_url: str, db_url: str, queue: str, producers: int, count: int, batch: int,
    pipelined: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """P producer processes emit ``count`` records in all while the collector runs: first emit to
    last commit, stored and emitted rates, the lag after the last emit, emit latency p50/p99."""
    per = count // producers
    total = per * producers
    child = start_child(redis_url, db_url, queue, total + 1, batch, *_mode(pipelined))
    read_line(child)
    _warm_up(redis_url, db_url, queue)
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_producer, args=(redis_url, queue, per, k * per, start, out))
        for k in range(producers)
    ]
    for proc in procs:
        proc.start()
    time.sleep(0.3)
    start.set()
    reports = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    collector = read_line(child)
    child.wait()
    first_emit = min(r[0] for r in reports)
    last_emit = max(r[1] for r in reports)
    latencies = sorted(x for r in reports for x in r[2])
    stored, distinct = (n - 1 for n in count_rows(db_url))  # not counting the warm-up row
    last_commit = collector["last_commit"]
    return {
        "records": total,
        "seconds": last_commit - first_emit,
        "rate": total / (last_commit - first_emit),
        "emit_rate": total / (last_emit - first_emit),
        "lag": last_commit - last_emit,
        "emit_p50_ms": latencies[len(latencies) // 2] / 1e6,
        "emit_p99_ms": latencies[int(len(latencies) * 0.99)] / 1e6,
        "stored": stored,
        "distinct": distinct,
        "dead": collector["dead"],
        "batches": collector["batches"],
        "peak_rss_mib": collector["peak_rss_mib"],
    }


def _warm_up(redis_url: str, db_url: str, queue: str) -> None:
    """One record first, so the table exists before the clock starts (a steady state)."""
    emitter = Emitter(redis_url, queue)
    emitter.emit(result_data(-1), table=TABLE, key="warm-up")
    emitter.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if count_rows(db_url)[0]:
                return
        except sa.exc.OperationalError:
            pass  # no table yet
        time.sleep(0.05)
    raise RuntimeError("the collector did not store the warm-up record within 60 s")


def emit_cost(redis_url: str, queue: str, calls: int) -> dict[str, Any]:
    """``emit`` against a bare ``xadd`` of the same bytes on the same kind of connection, in
    alternating blocks (so load from elsewhere hits both alike); then the batched rates."""
    client = redis.Redis.from_url(redis_url)
    emitter = Emitter(redis_url, queue)
    item = result_data(0)
    payload = emitter.record(item, table=TABLE).encode()
    clock = time.perf_counter_ns
    bare: list[int] = []
    emits: list[int] = []
    block = 200
    for _ in range(max(1, calls // block)):
        for _ in range(block):
            t = clock()
            client.xadd(queue, {FIELD: payload})
            bare.append(clock() - t)
        for _ in range(block):
            t = clock()
            emitter.emit(item, table=TABLE)
            emits.append(clock() - t)
    bare.sort()
    emits.sort()
    p50_bare, p50_emit = bare[len(bare) // 2], emits[len(emits) // 2]
    result = {
        "records": len(emits),
        "xadd_p50_us": p50_bare / 1e3,
        "emit_p50_us": p50_emit / 1e3,
        "emit_p99_ms": emits[int(len(emits) * 0.99)] / 1e6,
        "ratio_p50": p50_emit / p50_bare,
        "ratio_mean": statistics.fmean(emits) / statistics.fmean(bare),
    }
    result.update(_batched_rates(client, emitter, queue, payload, item, calls * 5))
    client.delete(queue)
    emitter.close()
    client.close()
    return result


def _batched_rates(
    client: redis.Redis, emitter: Emitter, queue: str, payload: bytes, item: dict, count: int
) -> dict[str, float]:
    """records/s of a bare pipelined XADD (1,000 per round trip), ``emit_many`` of 1,000 and
    ``Emitter(buffer=1000)``."""
    size = 1000
    rounds = max(1, count // size)
    items = [item] * size

    t0 = time.perf_counter()
    for _ in range(rounds):
        pipe = client.pipeline(transaction=False)
        for _ in range(size):
            pipe.xadd(queue, {FIELD: payload})
        pipe.execute()
    pipelined = rounds * size / (time.perf_counter() - t0)
    client.delete(queue)

    t0 = time.perf_counter()
    for _ in range(rounds):
        emitter.emit_many(items, table=TABLE)
    many = rounds * size / (time.perf_counter() - t0)
    client.delete(queue)

    buffered = Emitter(emitter.redis_url, queue, buffer=size, flush_interval=1.0)
    t0 = time.perf_counter()
    for _ in range(rounds * size):
        buffered.emit(item, table=TABLE)
    buffered.flush()
    buffered_rate = rounds * size / (time.perf_counter() - t0)
    buffered.close()
    return {
        "pipelined_xadd_rate": pipelined,
        "emit_many_rate": many,
        "buffered_rate": buffered_rate,
        "emit_many_ratio": many / pipelined,
        "buffered_ratio": buffered_rate / pipelined,
    }
