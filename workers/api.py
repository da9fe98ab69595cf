"""Module-level ``emit``/``emit_many`` over one lazily built, fork-aware default Emitter."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from workers.emitter import Emitter

_lock = threading.Lock()
_default: Emitter | None = None
_default_pid = 0


def _renew_lock_in_child() -> None:
    """A forked child gets a fresh lock: a parent thread may have been building the default."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_renew_lock_in_child)


def default_emitter() -> Emitter:
    """The process's default Emitter, built from the environment on first use and after a fork."""
    global _default, _default_pid
    pid = os.getpid()
    if _default is None or _default_pid != pid:
        with _lock:
            if _default is None or _default_pid != pid:
                _default, _default_pid = Emitter(), pid
    return _default


def reset() -> None:
    """Forget the default Emitter (tests, or after changing COLLECTOR_* variables)."""
    global _default
    with _lock:
        if _default is not None and _default_pid == os.getpid():
            _default.close()
        _default = None


def emit(result: Any, *, table: str = "results", key: str | None = None) -> str:
    """Send one result to the collector's queue; returns the record id (the key, when given)."""
    return default_emitter().emit(result, table=table, key=key)


def emit_many(results: Iterable[Any], *, table: str = "results") -> list[str]:
    """Send many results in one round trip; returns their record ids."""
    return default_emitter().emit_many(results, table=table)
