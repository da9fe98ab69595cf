"""Each dead letter logged at warning level with its table, record id and reason, so a refused
record shows where the collector runs, not only in ``collector status``; rate-limited, so a
flood of refusals (a job sending the same bad record a million times) costs a few lines."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from collector.entries import DeadEntry
from workers.checks import DEFAULT_LIMITS, is_identifier
from workers.record import unpack

log = logging.getLogger(__name__)
EVERY = 10.0  # seconds: at most MOST lines per window, then one line counting the rest
MOST = 10
REASON_CHARS = 300


class DeadLetterLog:
    """Logs dead letters, at most ``most`` lines every ``every`` seconds of ``clock``."""

    def __init__(
        self, most: int = MOST, every: float = EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.most, self.every, self.clock = most, every, clock
        self._window, self._logged, self._quiet = -float("inf"), 0, 0

    def report(self, dead: Iterable[DeadEntry]) -> None:
        """Log these dead letters (one line each while the window allows)."""
        for _entry_id, raw, reason in dead:
            now = self.clock()
            if now - self._window >= self.every:
                self._close_window()
                self._window, self._logged = now, 0
            if self._logged >= self.most:
                self._quiet += 1
                continue
            self._logged += 1
            table, rid = identify(raw)
            log.warning("dead letter: table %s, id %s: %s", table, rid, _short(reason))

    def _close_window(self) -> None:
        if self._quiet:
            log.warning(
                "%d more dead letters in %.0f s not logged one by one (see collector dead list)",
                self._quiet,
                self.every,
            )
            self._quiet = 0


def identify(raw: bytes) -> tuple[str, str]:
    """(table, record id) of a dead letter's bytes as far as they can be read, else "?"."""
    try:
        wire: Any = unpack(raw, DEFAULT_LIMITS)
    except Exception:  # not msgpack within the limits: that may be why it is dead
        return "?", "?"
    if not isinstance(wire, dict):
        return "?", "?"
    table, rid = wire.get("t"), wire.get("id")
    if isinstance(rid, list):  # a batch entry dead-lettered whole
        rid = f"{_name(rid[0]) if rid else '?'} and {max(len(rid) - 1, 0)} more"
    return (str(table) if is_identifier(table) else _name(table)), _name(rid)


def _name(value: Any) -> str:
    return (
        value
        if isinstance(value, str) and value.isprintable() and len(value) <= 255
        else (_short(repr(value), 80) if value is not None else "?")
    )


def _short(text: str, most: int = REASON_CHARS) -> str:
    text = text if text.isprintable() else repr(text)[1:-1]
    return text if len(text) <= most else text[: most - 1] + "…"


_DEFAULT = DeadLetterLog()
log_dead_letters = _DEFAULT.report  # the daemon's one call, once per batch
