"""One batch as the daemon holds it from read to acknowledgement: the entries taken, the records
decoded from them (with their raw bytes, for dead letters), and the dead letters so far.

An entry holds one record (wire version 1) or many (a batch entry, version 2, workers.entry).
The delivery limit and a malformed entry dead-letter the entry whole, as it is; a record of a
batch entry that is refused, when decoded or by the database, is dead-lettered alone, as the
version-1 record it would have been if emitted on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat

from collector.entries import DeadEntry, Entry
from workers.checks import Limits, size_problem
from workers.columnar import v1_records
from workers.entry import BATCH_PREFIX, BATCH_VERSION, decode_entry, records_in
from workers.errors import DecodeError
from workers.record import Record, unpack, unpacker


@dataclass
class Batch:
    """Entries read together; ``records[i]`` came from entry ``sources[i]``, whose bytes are
    ``raw[i]`` when it held that record alone (None: a batch entry's record). Until ``decode``
    the entries to decode are ``kept_ids`` and ``kept_raws`` (the pipelined collector's writer
    process decodes them: collector.pipeline)."""

    ids: list[bytes] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    raw: list[bytes | None] = field(default_factory=list)
    sources: list[bytes] = field(default_factory=list)
    dead: list[DeadEntry] = field(default_factory=list)
    stream: str = ""  # the stream it was read from (a sharded queue finishes it there)
    kept_ids: list[bytes] = field(default_factory=list)  # entries to decode, and their bytes
    kept_raws: list[bytes] = field(default_factory=list)

    @classmethod
    def taken(cls, entries: list[Entry], max_deliveries: int, last_error: str | None) -> Batch:
        """The batch of ``entries`` as read, not yet decoded: an entry without our field, or
        delivered more than ``max_deliveries`` times without being stored, is a dead letter
        with a reason at once; the others are kept for ``decode``."""
        ids, raws, problems, deliveries = (
            zip(*entries, strict=True) if entries else ((), (), (), ())
        )
        batch = cls(ids=list(ids))
        if None not in raws and set(problems) == {None} and max(deliveries) <= max_deliveries:
            batch.kept_ids, batch.kept_raws = batch.ids[:], list(raws)  # the usual batch
            return batch
        for entry in entries:
            if entry.raw is None:  # deleted before we read it
                continue
            if entry.problem is not None:
                batch.dead.append((entry.id, entry.raw, entry.problem))
            elif entry.deliveries > max_deliveries:
                reason = (
                    f"delivered {entry.deliveries} times without being stored "
                    f"(--max-deliveries {max_deliveries}); last error: "
                    f"{last_error or 'none recorded (the collector stopped while holding it)'}"
                )
                batch.dead.append((entry.id, entry.raw, reason))
            else:
                batch.kept_ids.append(entry.id)
                batch.kept_raws.append(entry.raw)
        return batch

    def decode(self, limits: Limits) -> None:
        """Decode the entries kept (once: a batch retried is not decoded again); what cannot
        be a record becomes a dead letter with a reason."""
        ids, raws = self.kept_ids, self.kept_raws
        self.kept_ids, self.kept_raws = [], []
        records = _all_v1(raws, limits)
        if records is not None:  # the usual batch: every record checked column by column
            self.records, self.raw, self.sources = records, list(raws), ids
            return
        before, self.dead = self.dead, []
        for entry_id, raw in zip(ids, raws, strict=True):
            self._add(entry_id, raw, limits)
        decoded, self.dead = self.dead, before
        self.add_decoded_dead(decoded)

    def add_decoded_dead(self, dead: list[DeadEntry]) -> None:
        """Add the dead letters decoding made to those of ``taken``, in the entries' order (the
        dead-letter stream then follows the queue)."""
        if not (self.dead and dead):
            self.dead += dead
            return
        where = {entry_id: i for i, entry_id in enumerate(self.ids)}
        self.dead = sorted(self.dead + dead, key=lambda letter: where[letter[0]])  # stable

    def held(self) -> int:
        """Records and dead letters the batch holds before it is decoded, as far as the size
        of the next read needs: one an entry, a batch entry's count from its head."""
        raws = self.kept_raws
        if not any(map(bytes.startswith, raws, repeat(BATCH_PREFIX))):
            return len(self.dead) + len(raws)
        return len(self.dead) + sum(map(records_in, raws))

    def _add(self, entry_id: bytes, raw: bytes, limits: Limits) -> None:
        """Decode one entry into records and dead letters."""
        too_big = size_problem(len(raw), limits)  # too big for one record, not for a batch
        try:
            try:
                wire = unpack(raw, limits)
            except DecodeError:
                if too_big is None:
                    raise
                raise DecodeError(too_big, raw) from None
            if isinstance(wire, dict) and wire.get("v") == BATCH_VERSION:
                records, refused = decode_entry(wire, raw, limits)
                self.records += records
                self.raw += [None] * len(records)
                self.sources += [entry_id] * len(records)
                self.dead += [(entry_id, v1, reason) for v1, reason in refused]
                return
            if too_big is not None:
                raise DecodeError(too_big, raw)
            rec = Record.from_wire(wire, raw, limits)
        except DecodeError as exc:
            self.dead.append((entry_id, raw, exc.reason))
            return
        self.records.append(rec)
        self.raw.append(raw)
        self.sources.append(entry_id)

    def refuse(self, refused: list[tuple[int, str]]) -> None:
        """Turn the records the store refused (positions, reasons) into dead letters."""
        for i, reason in refused:
            raw = self.raw[i]
            self.dead.append(
                (self.sources[i], self.records[i].encode() if raw is None else raw, reason)
            )

    def __len__(self) -> int:
        return len(self.ids)


def _all_v1(raws: Sequence[bytes], limits: Limits) -> list[Record] | None:
    """The records of ``raws`` when each is a version-1 record that passes every check (decided
    column by column), else None: then each entry is decoded on its own."""
    if not raws or max(map(len, raws)) > limits.max_record_bytes:
        return None
    if any(map(bytes.startswith, raws, repeat(BATCH_PREFIX))):
        return None  # batch entries: decoded entry by entry, not unpacked twice
    try:
        wires = list(map(unpacker(limits), raws))
    except Exception:  # one of them is no msgpack: record by record says which
        return None
    return v1_records(wires, limits)
