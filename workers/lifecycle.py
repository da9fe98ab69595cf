"""Process lifecycle for emitters: fresh locks in a forked child, a hook when the process ends.

A child forked while another thread of its parent held a lock inherits the lock held, and the
thread that would release it does not exist in the child: objects that own locks register with
``renew_after_fork`` and replace them in the child right after the fork. A process ends
normally either through the interpreter's exit (``atexit``) or, as a multiprocessing worker,
through ``os._exit`` after multiprocessing's own finalizers: ``ExitHook`` registers with both.
"""

from __future__ import annotations

import atexit
import os
import weakref
from collections.abc import Callable
from typing import Any, Protocol

# multiprocessing runs finalizers with a priority >= 0 when a worker ends, highest first
EXIT_PRIORITY = 10


class ForkAware(Protocol):
    def after_fork_in_child(self) -> None:
        """Replace every lock, thread and per-process state inherited from the parent."""


_renewable: weakref.WeakSet[Any] = weakref.WeakSet()


def renew_after_fork(obj: ForkAware) -> None:
    """Call ``obj.after_fork_in_child()`` in every child forked from now on, while ``obj`` lives."""
    _renewable.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_renewable):
        obj.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


_hooks: weakref.WeakSet[ExitHook] = weakref.WeakSet()


def run_exit_hooks() -> None:
    """Run now every exit hook armed in this process, highest ``order`` first (buffers before
    spools, so records a failed buffer flush spools are re-sent with the spool).

    For hosts whose end is not this process's end: a Dask worker closing inside a process
    that goes on, or a process that a Dask nanny may terminate once its worker has closed. The
    hooks stay armed, so whatever is buffered later still goes at the process's real end.
    """
    for hook in sorted(_hooks, key=lambda hook: -hook.order):
        hook.run_now()


class ExitHook:
    """Runs ``callback`` once when this process ends normally: at interpreter exit, or when it
    is a multiprocessing worker that ends (it leaves with ``os._exit`` and runs no atexit hook,
    only multiprocessing's finalizers); or earlier through ``run_exit_hooks``. Armed per
    process: a forked child arms its own. ``order`` ranks hooks in ``run_exit_hooks``."""

    def __init__(self, callback: Callable[[], None], *, order: int = 0) -> None:
        self._callback = callback
        self.order = order
        self._pid = 0  # the process this hook is armed in
        self._atexit = False
        self._finalizer: Any = None
        _hooks.add(self)

    def arm(self) -> None:
        """Make sure ``callback`` runs when this process ends (cheap when already armed)."""
        pid = os.getpid()
        if self._pid == pid:
            return
        self._pid = pid
        if not self._atexit:  # atexit's list is inherited by a forked child: once is enough
            atexit.register(self._run)
            self._atexit = True
        from multiprocessing import util  # every multiprocessing worker has imported it already

        # a worker starts with an empty finalizer registry, and a finalizer runs only in the
        # process that made it: each process registers its own
        self._finalizer = util.Finalize(None, self._run, exitpriority=EXIT_PRIORITY)

    def disarm(self) -> None:
        """Forget the hook (after an explicit close)."""
        if self._atexit:
            atexit.unregister(self._run)
            self._atexit = False
        if self._finalizer is not None and self._pid == os.getpid():
            self._finalizer.cancel()
        self._finalizer = None
        self._pid = 0

    def run_now(self) -> None:
        """Run the callback now if the hook is armed in this process; it stays armed."""
        if self._pid == os.getpid():
            self._callback()

    def _run(self) -> None:
        if self._pid == os.getpid():  # not in a child that never armed it
            self._pid = 0  # once: atexit and multiprocessing's own atexit hook may both call it
            self._callback()
