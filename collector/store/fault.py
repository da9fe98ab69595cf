"""The kinds of fault on the store path (collector.store.classify sorts errors into them; each
dialect reads its driver's error codes into them)."""

from __future__ import annotations

import enum


class Fault(enum.Enum):
    TRANSIENT = "transient"
    RECORDS = "records"
    STALE = "stale"
    UNKNOWN = "unknown"
