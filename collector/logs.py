"""Logging set-up for the CLI (the library never configures logging itself)."""

from __future__ import annotations

import logging
import sys


def configure(verbose: bool = False) -> None:
    """One stderr handler with timestamps; INFO by default, DEBUG with ``verbose``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("collector")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
