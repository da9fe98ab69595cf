"""Parameter keys: one stable record id per (table, input parameters, replicate).

A point resubmitted under a new job id, from a new Slurm array or by hand is still one row.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

SIGNIFICANT_DIGITS = 12


def canonical(value: Any) -> Any:
    """A JSON-ready form in which equal parameters look equal: 0.1 from a grid (0.1000000000000001)
    and 0.1 typed by hand, 2 and 2.0, a tuple and a list."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) or type(value).__module__ == "numpy":
        number = float(value) if not isinstance(value, int) else value
        if isinstance(number, float):
            if not math.isfinite(number):
                return repr(number)
            rounded = float(f"{number:.{SIGNIFICANT_DIGITS}g}")
            return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded
        return number
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return str(value)


def param_key(table: str, params: Mapping[str, Any], replicate: int = 0) -> str:
    """The record id for ``params`` in ``table``: 32 hex digits of SHA-256 of the canonical form."""
    payload = json.dumps([table, canonical(dict(params)), int(replicate)], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:32]
