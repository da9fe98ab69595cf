"""One batch as the daemon holds it from read to acknowledgement: the entries taken, the records
decoded from them (with their raw bytes, for dead letters), and the dead letters so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.stream import DeadEntry, Entry
from workers.errors import DecodeError
from workers.record import Limits, Record


@dataclass
class Batch:
    """Entries read together; ``records[i]`` came from ``raw[i]`` in entry ``sources[i]``."""

    ids: list[bytes] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    sources: list[bytes] = field(default_factory=list)
    dead: list[DeadEntry] = field(default_factory=list)

    @classmethod
    def decode(
        cls, entries: list[Entry], limits: Limits, max_deliveries: int, last_error: str | None
    ) -> Batch:
        """Decode ``entries``; what cannot be a record, or was delivered more than
        ``max_deliveries`` times without being stored, becomes a dead letter with a reason."""
        batch = cls(ids=[e.id for e in entries])
        for entry in entries:
            if entry.raw is None:
                continue  # deleted before we read it: nothing to store
            if entry.problem is not None:
                batch.dead.append((entry.id, entry.raw, entry.problem))
                continue
            if entry.deliveries > max_deliveries:
                reason = (
                    f"delivered {entry.deliveries} times without being stored "
                    f"(--max-deliveries {max_deliveries}); last error: "
                    f"{last_error or 'none recorded (the collector stopped while holding it)'}"
                )
                batch.dead.append((entry.id, entry.raw, reason))
                continue
            try:
                rec = Record.decode(entry.raw, limits)
            except DecodeError as exc:
                batch.dead.append((entry.id, entry.raw, exc.reason))
                continue
            batch.records.append(rec)
            batch.raw.append(entry.raw)
            batch.sources.append(entry.id)
        return batch

    def refuse(self, refused: list[tuple[int, str]]) -> None:
        """Turn the records the store refused (positions, reasons) into dead letters."""
        self.dead += [(self.sources[i], self.raw[i], reason) for i, reason in refused]

    def __len__(self) -> int:
        return len(self.ids)
