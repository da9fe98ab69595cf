"""The one click type of every float flag (all are seconds): a FloatRange refusing nan and inf.

click's FloatRange takes ``nan`` (which fails every bound check, so passes them) and ``inf``:
a wait of nan seconds never ends and one of inf ends in an OverflowError traceback.
"""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloat(click.FloatRange):
    """A finite float within the bounds; anything else is a usage error (exit 2)."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The number, checked finite before (and bounded by) FloatRange."""
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number of seconds", param, ctx)
        return super().convert(number, param, ctx)
