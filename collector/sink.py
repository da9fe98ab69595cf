"""The port the daemon writes batches through: records in, refused records out.

``collector.store.Store`` (SQL, one transaction a batch) implements it structurally; another
sink is one more module with these three members, composed with the SQL store.
"""

from __future__ import annotations

from typing import Protocol

from workers.record import Record

Refused = list[tuple[int, str]]  # (position in the batch, reason)


class Sink(Protocol):
    """Where committed records go."""

    # rows the last ``write`` committed that their tables did not hold before: "stored"; a
    # record whose row the table had (a redelivery, a rerun replacing a row) adds nothing
    added: int

    def write(self, records: list[Record]) -> Refused:
        """Commit ``records`` (all or none of those not refused); returns the positions refused,
        with reasons. Raises collector.errors.DatabaseUnavailable to have the whole batch
        retried later."""

    def close(self) -> None:
        """Release the connections (the daemon's last step)."""
