"""Text from the command line or a CSV file as a typed value: int, float, bool, else text."""

from __future__ import annotations

import math
import re
from typing import Any

from collector.errors import ConfigError

# ASCII digits only, as in JSON: Python's int() and float() also read other scripts' digits
# ("١٢٣" as 123), which would store text the user wrote as a number they did not.
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(
    r"[+-]?([0-9]+\.?[0-9]*([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?|inf|infinity|nan)", re.I
)
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1  # a BigInteger column, in every database
_INT_DIGITS = 19  # the most digits a number in that range has


def parse_value(text: str) -> Any:
    """int, float, true/false (any case), else the text itself (``collector emit k=v``,
    ``--grid`` values, CSV points: one rule everywhere). A number no column can hold exactly
    (an integer beyond 64 bits, a float beyond its range) is a ConfigError, never altered."""
    if _INT.fullmatch(text):
        return parse_int(text)
    if _FLOAT.fullmatch(text):
        return parse_float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_int(text: str) -> int:
    """A decimal integer within 64 bits (signed); ConfigError naming it otherwise."""
    digits = text.lstrip("+-").lstrip("0")
    value = int(text) if len(digits) <= _INT_DIGITS else None
    if value is None or not INT_MIN <= value <= INT_MAX:
        raise ConfigError(f"integer {_short(text)} is beyond 64 bits")
    return value


def parse_float(text: str) -> float:
    """A float; ConfigError when finite text overflows to infinity (``1e999``) or a number
    that is not zero underflows to zero (``1e-400``)."""
    value = float(text)
    overflow = math.isinf(value) and "inf" not in text.lower()
    underflow = value == 0 and any(c in "123456789" for c in text.lower().partition("e")[0])
    if overflow or underflow:
        raise ConfigError(f"number {_short(text)} is beyond the float range")
    return value


def _short(text: str, most: int = 24) -> str:
    """``text`` for a message: long numbers cut, with their length."""
    return text if len(text) <= most else f"{text[:12]}...{text[-4:]} ({len(text)} characters)"
