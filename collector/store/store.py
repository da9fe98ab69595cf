"""Writing a batch: one transaction holding the DDL and the rows it needs; a failure is
classified (collector.store.classify) and either retried whole later or bisected down to the
records at fault, so a batch ends exactly as its records sent one by one would."""

from __future__ import annotations

import logging
from collections import defaultdict

import sqlalchemy as sa

from collector.errors import DatabaseUnavailable, first_line
from collector.store import ddl
from collector.store.classify import Fault, classify
from collector.store.columns import INT64
from collector.store.schema import Plan, Schema, TableInfo
from collector.store.writers import suits_fast, writers_for
from workers.record import Record

log = logging.getLogger(__name__)
UNKNOWN_RETRIES = 3  # an unclassified error is retried this often, then bisected like a bad row
Shape = tuple[str, tuple[str, ...], tuple[type, ...]]  # a record's table, keys and value types
Refused = list[tuple[int, str]]  # (position in the batch, reason)


class Store:
    """Commits batches of records into their tables through one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine, schema: Schema) -> None:
        self.engine = engine
        self.schema = schema
        self._fast, self._generic = writers_for(engine.dialect)
        self._stale = True  # reflect the schema before the next attempt
        self._fresh = False  # whether the current attempt reflected the schema itself
        self._started = False
        self._unknown = 0  # unclassified failures of the batch being written
        self._step = "the row"
        self._fits: dict[Shape, tuple[TableInfo, tuple[int, ...]]] = {}  # and where its ints are

    def write(self, records: list[Record]) -> Refused:
        """Store ``records``; returns the positions refused, with reasons. Raises
        DatabaseUnavailable when the batch should be retried whole later."""
        refused = self._write(records, 0)
        self._unknown = 0
        return refused

    def _write(self, records: list[Record], offset: int) -> Refused:
        try:
            rejected = self._attempt(records)
        except Exception as exc:  # every error is classified below; none escapes unsorted
            self._stale = True
            if not self._fresh:  # a cached schema may be what failed: once more, reflected
                return self._write(records, offset)
            self._raise_if_retryable(exc)
            if len(records) == 1:
                return [(offset, self._refusal(exc))]
            mid = len(records) // 2
            return self._write(records[:mid], offset) + self._write(records[mid:], offset + mid)
        return [(offset + index, reason) for index, reason in rejected]

    def _raise_if_retryable(self, exc: Exception) -> None:
        fault = classify(exc)
        if fault is Fault.TRANSIENT:
            self.engine.dispose()  # new connections: a file writable again is seen as such
            raise DatabaseUnavailable(first_line(exc)) from exc
        if fault is Fault.UNKNOWN and self._unknown < UNKNOWN_RETRIES:
            self._unknown += 1
            self.engine.dispose()
            message = f"{type(exc).__name__}: {first_line(exc)}"
            raise DatabaseUnavailable(f"{message} (unexpected; attempt {self._unknown})") from exc

    def _refusal(self, exc: Exception) -> str:
        if isinstance(exc, sa.exc.DBAPIError):
            return f"database refused {self._step}: {first_line(exc)}"
        return f"cannot store the row: {first_line(exc)}"

    def _attempt(self, records: list[Record]) -> list[tuple[int, str]]:
        """One transaction: reflect if needed, plan, run the DDL, insert; returns the refused."""
        self._fresh, self._step = self._stale, "the row"
        with self.engine.begin() as conn:
            if self._stale:
                self._load(conn)
            plan = self._plan(records)
            if plan.needs_ddl and not self._fresh:  # never decide a type on a cached schema
                self._load(conn)
                self._fresh, plan = True, self.schema.plan(records)
            if plan.needs_ddl:
                self._step = "the table change"
                ddl.apply(conn, plan, self.schema)
                self._step = "the row"
            self._insert(conn, [records[i] for i in plan.accepted])
        return plan.rejected

    def _load(self, conn: sa.Connection) -> None:
        if not self._started:
            ddl.drop_leftovers(conn)
            self._started = True
        self.schema.load(conn)
        self._stale = False

    def _plan(self, records: list[Record]) -> Plan:
        """``Schema.plan``, skipped when every record has the table, keys and value types of one
        it already accepted as it was, against the same table (only int ranges are rechecked)."""
        tables, fits = self.schema.tables, self._fits
        low, high = INT64
        for rec in records:
            values = tuple(rec.data.values())
            known = fits.get((rec.table, tuple(rec.data), tuple(map(type, values))))
            if known is None or known[0] is not tables.get(rec.table):
                break
            ints = known[1]
            if ints and not all(low <= values[i] <= high for i in ints):
                break
        else:
            return Plan(accepted=list(range(len(records))))
        plan = self.schema.plan(records)
        if not plan.needs_ddl:  # no staged changes: each verdict stands on its own
            if len(fits) > 4096:
                fits.clear()
            for index in plan.accepted:
                rec = records[index]
                types = tuple(map(type, rec.data.values()))
                ints = tuple(i for i, t in enumerate(types) if t is int)
                fits[(rec.table, tuple(rec.data), types)] = (tables[rec.table], ints)
        return plan

    def _insert(self, conn: sa.Connection, records: list[Record]) -> None:
        """Insert per table, in rounds: a second record with an id already in this batch goes
        in a later round, so the conflict rule treats it as if it came in a later batch."""
        by_table: dict[str, list[list[Record]]] = defaultdict(list)
        seen: dict[tuple[str, str], int] = defaultdict(int)
        for rec in records:
            rounds = by_table[rec.table]
            n = seen[rec.table, rec.id]
            seen[rec.table, rec.id] = n + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append(rec)
        for table, rounds in by_table.items():
            info = self.schema.tables[table]
            writer = self._fast if suits_fast(info) else self._generic
            for batch in rounds:
                writer.insert(conn, info, batch)
