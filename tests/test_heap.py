"""The cyclic collector is paused only while a batch is in hand, and left as it was found."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from dataclasses import replace

import pytest

from collector.daemon import Collector
from collector.heap import gc_paused
from workers import Emitter


@gc_paused
def state() -> bool:
    return gc.isenabled()


@gc_paused
def fail() -> None:
    raise RuntimeError("boom")


def test_paused_inside_enabled_again_after() -> None:
    assert gc.isenabled()
    assert state() is False
    assert gc.isenabled()


def test_enabled_again_after_an_exception() -> None:
    with pytest.raises(RuntimeError):
        fail()
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    try:
        assert state() is False
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_enabled_only_when_the_last_paused_call_in_any_thread_ends() -> None:
    inside, release = threading.Event(), threading.Event()

    @gc_paused
    def hold() -> None:
        inside.set()
        release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    assert inside.wait(10)
    assert state() is False
    assert not gc.isenabled()  # the other thread still holds its batch
    release.set()
    worker.join(10)
    assert gc.isenabled()


def test_run_once_leaves_the_collector_enabled(settings, fake_redis) -> None:
    Emitter(queue=settings.queue, client=fake_redis).emit({"x": 1}, table="t")
    collector = Collector(settings, client=fake_redis)
    collector.start()
    try:
        assert collector.run_once() == 1
        assert gc.isenabled()
    finally:
        collector.close()


class Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_garbage_with_cycles_left_by_a_batch_is_collected_after_it() -> None:
    freed: list[int] = []

    @gc_paused
    def batch() -> None:
        for i in range(2000):  # more than a collection's threshold of tracked objects
            weakref.finalize(Node(), freed.append, i)
        assert not freed  # paused: nothing collected while the batch is in hand

    gc.collect()
    batch()
    [[] for _ in range(10)]  # the next allocations trigger a collection, as without the pause
    assert len(freed) == 2000


def test_the_process_collects_its_garbage_while_the_collector_waits_for_records(
    settings, real_redis
) -> None:
    """An embedding program's threads make garbage while a Collector thread blocks in its read
    of an empty queue: the wait holds no batch, so collections run as usual meanwhile."""
    stop = threading.Event()
    collector = Collector(replace(settings, max_wait=3.0), client=real_redis)
    runner = threading.Thread(target=collector.run, args=(stop,))
    runner.start()
    try:
        wait_until_waiting(real_redis, settings.queue)
        before = gc.get_stats()[0]["collections"]
        made = 50 * gc.get_threshold()[0]
        for _ in range(made):
            Node()
        assert gc.get_stats()[0]["collections"] - before >= made // gc.get_threshold()[0] // 2
    finally:
        stop.set()
        runner.join(15)
    assert gc.isenabled()


def wait_until_waiting(client, queue: str) -> None:
    """Until the collector's first read, blocking for 3 s, is under way: it joins the group as
    a consumer just before."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if client.exists(queue) and client.xinfo_consumers(queue, "collector"):
            time.sleep(0.3)  # the read blocks for 3 s: sample well inside it
            return
        time.sleep(0.02)
    raise AssertionError(f"no collector waited on {queue}")
