"""Parameter keys: one stable record id per (table, input parameters, replicate).

A point resubmitted under a new job id, from a new Slurm array or by hand is still one row.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from workers.errors import EncodeError

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


REPLICATE = "replicate"


def point_key(table: str, inputs: Mapping[str, Any]) -> str:
    """The parameter key of a record whose inputs are the point's parameters plus, optionally,
    ``replicate`` (the replicate number, 0 when absent): what a sweep's ledger expects."""
    params = {name: value for name, value in inputs.items() if name != REPLICATE}
    return param_key(table, params, int(inputs.get(REPLICATE) or 0))


def record_key(table: str, data: Mapping[str, Any], inputs: Iterable[str]) -> str:
    """The parameter key for ``collector emit --key params``: ``inputs`` names the columns of
    ``data`` that are parameters (``replicate`` among them if the sweep has replicates)."""
    names = list(inputs)
    absent = [name for name in names if name not in data]
    if not names or absent:
        raise EncodeError(f"input parameter(s) not in the record: {', '.join(absent) or '(none)'}")
    return point_key(table, {name: data[name] for name in names})
