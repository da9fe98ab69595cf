"""The cyclic garbage collector paused while a batch is in hand: a batch's thousands of live
records would otherwise be traversed by collection after collection (about 2 us a record,
docs/performance.md), though reference counting frees all of them when the batch ends."""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_holders = 0  # calls inside ``gc_paused`` right now, in every thread
_resume = False  # whether the collector was enabled when the first of them began
_mine = threading.local()  # ``depth``: this thread's paused calls not waiting (``waiting``)


def gc_paused(func: Callable[P, T]) -> Callable[P, T]:
    """``func`` run with the cyclic collector paused, then enabled again once no paused call is
    left, if it was enabled before (garbage with cycles a batch left is collected then)."""

    @functools.wraps(func)
    def paused(*args: P.args, **kwargs: P.kwargs) -> T:
        _enter()
        try:
            return func(*args, **kwargs)
        finally:
            _leave()

    return paused


@contextmanager
def waiting() -> Iterator[None]:
    """A block where a paused call only waits (a blocking read, before its batch exists): the
    collector runs meanwhile as if this call were not paused, for the process's other threads
    (an embedding program's garbage would pile up for as long as the queue stays empty)."""
    if not getattr(_mine, "depth", 0):
        yield
        return
    _leave()
    try:
        yield
    finally:
        _enter()


def _enter() -> None:
    global _holders, _resume
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            gc.disable()
        _holders += 1
        _mine.depth = getattr(_mine, "depth", 0) + 1


def _leave() -> None:
    global _holders
    with _lock:
        _mine.depth -= 1
        _holders -= 1
        if _holders == 0 and _resume:
            gc.enable()
