"""Writing a batch: one transaction holding the DDL and the rows it needs; a failure is
classified (collector.store.classify) and either retried whole later or bisected down to the
records at fault, so a batch ends exactly as its records sent one by one would."""

from __future__ import annotations

import logging
from collections import defaultdict
from operator import attrgetter, itemgetter

import sqlalchemy as sa

from collector import dialects
from collector.errors import DatabaseUnavailable, first_line
from collector.store import ddl
from collector.store.classify import Fault, SchemaRaced, classify
from collector.store.columns import FLOAT_EXACT, INT64, plain_floats
from collector.store.schema import Plan, Schema, TableInfo
from collector.store.writers import suits_fast, writers_for
from workers.record import Record

log = logging.getLogger(__name__)
UNKNOWN_RETRIES = 3  # an unclassified error is retried this often, then bisected like a bad row
STALE_RETRIES = 6  # a batch planned again after peers' schema changes, then bisected
MAX_SHAPES = 16  # distinct (table, keys) in a batch checked column by column; more: planned
_DATA, _TABLE, _ID, _NONE = attrgetter("data"), attrgetter("table"), attrgetter("id"), type(None)
Refused = list[tuple[int, str]]  # (position in the batch, reason)


class Store:
    """Commits batches of records into their tables through one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine, schema: Schema) -> None:
        self.engine = engine
        self.schema = schema
        self.rules = dialects.get(engine.dialect.name)
        self._fast, self._generic = writers_for(engine.dialect)
        self._stale = True  # reflect the schema before the next attempt
        self._fresh = False  # whether the current attempt reflected the schema itself
        self._verified = False  # whether the schema was reflected during this write
        self._changed = False  # whether the current attempt began a schema change
        self._started = False
        self._unknown = 0  # unclassified failures of the batch being written
        self._raced = 0  # times this batch was retried after a peer's DDL (Fault.STALE)
        self._step = "the row"
        self._fits: dict[tuple[str, str, type], TableInfo] = {}  # a value type a column took
        self._inserted = 0  # rows new to their tables, by the attempts of this write committed
        # Rows the last write committed that their tables did not hold before: the sink port's
        # count of stored rows. A redelivered record already stored is not counted, and neither
        # is a row replaced under its key (a success over a failure, an earlier emit over a
        # later one): the sum over writes is the rows the tables gained.
        self.added = 0

    def write(self, records: list[Record]) -> Refused:
        """Store ``records``; returns the positions refused, with reasons. Raises
        DatabaseUnavailable when the batch should be retried whole later."""
        self._raced, self._verified = 0, False
        self._inserted = 0
        refused = self._write(records, 0)
        self._unknown = 0
        self.added = self._inserted
        return refused

    def close(self) -> None:
        """Release the engine's connections (the sink port's last call)."""
        self.engine.dispose()

    def _write(self, records: list[Record], offset: int) -> Refused:
        try:
            rejected = self._attempt(records)
        except Exception as exc:  # every error is classified below; none escapes unsorted
            fault = classify(exc, self.rules)
            # The schema in memory stays true after a failed attempt that changed none (its
            # rollback left the tables as they were), so the steps of a bisection trust it.
            # A change began: rolled back, or (MySQL) committed in part: read it again.
            if self._changed or fault in (Fault.TRANSIENT, Fault.UNKNOWN):
                self._stale = True
            if fault is Fault.TRANSIENT:  # no second try now: the database cannot take any
                self.engine.dispose()  # new connections: a file writable again is seen as such
                raise DatabaseUnavailable(first_line(exc)) from exc
            if not (self._verified or self._fresh):  # a schema cached by an earlier write
                self._stale = True  # may be what failed: once more, reflected
                return self._write(records, offset)
            if fault is Fault.STALE and self._raced < STALE_RETRIES:  # a peer's DDL, committed
                self._raced += 1  # after our reflection, is visible now: once more, reflected
                self._stale = True  # again (each race is a change that peer has committed)
                return self._write(records, offset)  # reflected again
            self._raise_if_unknown(exc, fault)
            if len(records) == 1:
                return [(offset, self._refusal(exc))]
            mid = len(records) // 2
            return self._write(records[:mid], offset) + self._write(records[mid:], offset + mid)
        return [(offset + index, reason) for index, reason in rejected]

    def _raise_if_unknown(self, exc: Exception, fault: Fault) -> None:
        """An unclassified error is retried whole a few times before it counts as a bad row."""
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
        self._fresh, self._step, self._changed = self._stale, "the row", False
        with self.engine.begin() as conn:
            if self._stale:
                self._load(conn)
            plan = self._plan(records, conn)
            if plan.needs_ddl and not self._fresh:  # never decide a type on a cached schema
                self._load(conn)
                self._fresh, plan = True, self.schema.plan(records, conn)
            if plan.needs_ddl:
                self._step, self._changed = "the table change", True
                ddl.apply(conn, plan, self.schema)
                self._step = "the row"
            _hold_ints(conn, plan, self.schema)
            inserted = self._insert(conn, [records[i] for i in plan.accepted])
        self._inserted += inserted  # counted once committed: the block ended without an error
        return plan.rejected

    def _load(self, conn: sa.Connection) -> None:
        if not self._started:
            ddl.drop_leftovers(conn)
            self._started = True
        self.schema.load(conn)
        self._stale, self._verified = False, True

    def _plan(self, records: list[Record], conn: sa.Connection) -> Plan:
        """``Schema.plan``, skipped when every value has a type its column already took as it
        was, in the same table (only int ranges are rechecked, and ints past 2**53 for a float
        column), checked column by column."""
        if self._all_fit(records):
            return Plan(accepted=list(range(len(records))))
        plan = self.schema.plan(records, conn)
        if not plan.needs_ddl:  # no staged changes: each verdict stands on its own
            fits, tables = self._fits, self.schema.tables
            if len(fits) > 4096:
                fits.clear()
            for index in plan.accepted:
                rec = records[index]
                info = tables[rec.table]
                for key, value in rec.data.items():
                    fits[rec.table, key, type(value)] = info
        return plan

    def _all_fit(self, records: list[Record]) -> bool:
        """Whether every record fits its table as it is, by the column types seen before."""
        if not records:
            return True
        tables, fits = self.schema.tables, self._fits
        datas = list(map(_DATA, records))
        shapes = set(zip(map(_TABLE, records), map(tuple, datas), strict=True))
        if len(shapes) > MAX_SHAPES:
            return False
        low, high = INT64
        odd_floats = self.rules.refuses_floats
        for table, keys in shapes:
            info = tables.get(table)
            if info is None:
                return False
            group = datas
            if len(shapes) > 1:
                group = [d for r, d in zip(records, datas, strict=True)
                         if r.table == table and tuple(d) == keys]  # fmt: skip
            for key in keys:
                column = list(map(itemgetter(key), group))
                types = set(map(type, column))
                types.discard(_NONE)
                if any(fits.get((table, key, t)) is not info for t in types):
                    return False
                if odd_floats and float in types and not plain_floats(column):
                    return False  # a float the database refuses: planned, value by value
                if int in types:
                    ints = [v for v in column if type(v) is int] if len(types) > 1 else column
                    least, most = min(ints), max(ints)
                    if least < low or most > high:
                        return False
                    if max(-least, most) > FLOAT_EXACT:  # perhaps an int no float holds:
                        return False  # planned value by value, its column checked (_hold_ints)
        return True

    def _insert(self, conn: sa.Connection, records: list[Record]) -> int:
        """Insert per table, in rounds: a second record with an id already in this batch goes
        in a later round, so the conflict rule treats it as if it came in a later batch."""
        if len(set(map(_TABLE, records))) == 1 and len(set(map(_ID, records))) == len(records):
            return self._insert_rounds(conn, {records[0].table: [records]})  # one round
        by_table: dict[str, list[list[Record]]] = defaultdict(list)
        seen: dict[tuple[str, str], int] = defaultdict(int)
        for rec in records:
            rounds = by_table[rec.table]
            n = seen[rec.table, rec.id]
            seen[rec.table, rec.id] = n + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append(rec)
        return self._insert_rounds(conn, by_table)

    def _insert_rounds(self, conn: sa.Connection, by_table: dict[str, list[list[Record]]]) -> int:
        """Each table's rounds in order; returns the rows new to their tables."""
        inserted = 0
        for table, rounds in by_table.items():
            info = self.schema.tables[table]
            writer = self._fast if suits_fast(info) else self._generic
            for batch in rounds:
                inserted += writer.insert(conn, info, batch)
        return inserted


def _hold_ints(conn: sa.Connection, plan: Plan, schema: Schema) -> None:
    """Before ints no float holds go into int columns: hold each such table until the commit
    (a read of it), then raise SchemaRaced if a peer widened the column to float since our
    schema was read; a peer's widening waits for this transaction and then sees the ints."""
    for table in {t for (t, _c), value in plan.inexact.items() if value is not None}:
        info = schema.tables[table]
        if info.strict:  # a model's table: never widened
            continue
        conn.execute(sa.select(sa.func.count()).select_from(info.table).where(sa.false()))
        kinds = TableInfo(ddl.reflect(conn, table)).kinds
        for (name, column), value in plan.inexact.items():
            if name == table and value is not None and kinds.get(column) != "int":
                raise SchemaRaced(f"column {column!r} of {table!r} was widened by a peer")
