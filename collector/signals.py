"""Signal handling for the long-running commands, defined once: the first SIGTERM or SIGINT (and
for serve SIGHUP, the login session closing) only sets a flag the loop notices, so the batch in
flight is committed and acknowledged; a second one escalates: run the emergency steps, then
exit at once. Unacknowledged records stay pending in Redis and are redelivered, so nothing is
lost. Installing handlers is the command's choice: embedders stop the loop themselves."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install(
    stop: threading.Event,
    emergency: Sequence[Callable[[], object]] = (),
    signals: Sequence[int] = STOP_SIGNALS,
) -> None:
    """First of ``signals``: set ``stop``. Second: run ``emergency`` (read when the signal
    comes, so a caller may fill a list later), each step's failure ignored, and exit with
    128 + the signal number."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            for step in emergency:
                with contextlib.suppress(Exception):  # exit regardless
                    step()
            os._exit(128 + signum)
        stop.set()

    for signum in signals:
        signal.signal(signum, handle)
