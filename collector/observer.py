"""What the daemon tells an observer after each batch and each failed attempt (metrics listen).

The daemon calls these hooks and nothing else, so it needs no metrics library: the Prometheus
exporter (collector.metrics) is one implementation, a test can pass its own.
"""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    """Told what each pass of the collector loop did."""

    def batch_done(self, seconds: float, stored: int, dead: int) -> None:
        """A batch was committed (told at once, whether its acknowledgement gets through now or
        later): ``seconds`` from read to commit, ``stored`` rows the commit added, ``dead``
        records dead-lettered."""

    def batch_failed(self, kind: str) -> None:
        """An attempt failed and will be retried; ``kind`` is ``database`` or ``redis``."""
