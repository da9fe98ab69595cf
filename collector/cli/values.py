"""Text from the command line or a CSV file as a typed value: int, float, bool, else text."""

from __future__ import annotations

import re
from typing import Any

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)", re.I)


def parse_value(text: str) -> Any:
    """int, float, true/false (any case), else the text itself (``collector emit k=v``,
    ``--grid`` values, CSV points: one rule everywhere)."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text
