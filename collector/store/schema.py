"""Tables in memory and planning: which records fit, and which tables and columns must change.

The schema is reflected once and kept; a batch is planned against it. A plan never decides a
type on a cached schema: when it needs DDL, the store reflects again and plans once more.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from collector import dialects
from collector.store.columns import (
    FLOAT_EXACT,
    INT64,
    LATER,
    OWN_PREFIX,
    fits,
    float_exact,
    kind_of_sql,
    kind_of_value,
    plain_floats,
)
from workers.record import Record

if TYPE_CHECKING:
    from collector.dialects.base import Dialect


@dataclass
class TableInfo:
    """What the collector knows of one table: its SQLAlchemy Table and each column's kind."""

    table: sa.Table
    strict: bool = False
    kinds: dict[str, str] = field(init=False)
    folded: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.kinds = {c.name: kind_of_sql(c.type) for c in self.table.columns}
        self.folded = {name.lower(): name for name in self.kinds}

    @property
    def has_id(self) -> bool:
        return "_id" in self.kinds


@dataclass
class Plan:
    """A batch sorted against the schema: accepted and rejected record positions, and the DDL
    the accepted ones need first (new tables, new columns, int columns widened to float)."""

    accepted: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    new_tables: dict[str, dict[str, str]] = field(default_factory=dict)
    new_columns: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    widen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # (table, int column) -> an int no float holds exactly, accepted for it by this plan or
    # found stored (None: none stored): such a column must not widen to float
    inexact: dict[tuple[str, str], int | None] = field(default_factory=dict)

    @property
    def needs_ddl(self) -> bool:
        return bool(self.new_tables or self.new_columns or self.widen)

    def known(self, table: str, info: TableInfo | None) -> dict[str, str]:
        """Column -> kind of ``table`` as it will be once the staged DDL ran."""
        known = dict(info.kinds) if info is not None else {}
        known.update(self.new_tables.get(table, {}))
        known.update(self.new_columns.get(table, {}))
        known.update(dict.fromkeys(self.widen.get(table, ()), "float"))
        return known

    def stage(
        self, table: str, info: TableInfo | None, adds: dict[str, str], widen: set[str]
    ) -> None:
        """Record one accepted record's changes to ``table``."""
        if info is None:
            columns = self.new_tables.setdefault(table, {})
            columns.update(adds)
            columns.update(dict.fromkeys(widen, "float"))
            return
        staged = dict(adds)
        if info.has_id and not info.strict:  # tables made before these metadata columns existed
            for meta in LATER:
                if meta.name not in info.kinds:
                    staged[meta.name] = kind_of_sql(meta.sql_type())
        if staged:  # only a table that changes gets an entry: apply reflects each one
            self.new_columns[table].update(staged)
        columns = self.new_columns.get(table, {})
        for key in widen:
            if key in columns:
                columns[key] = "float"
            else:
                self.widen[table].add(key)


def value_kind(key: str, value: object) -> tuple[str, str | None]:
    """The kind of one value, or a reason why no column can hold it."""
    kind = kind_of_value(value)
    if kind is None:
        return "", f"column {key!r}: unsupported value type {type(value).__name__}"
    if kind == "int" and not INT64[0] <= value <= INT64[1]:  # type: ignore[operator]
        return "", f"column {key!r}: integer {value} is outside the 64-bit range"
    return kind, None


def fit_problem(key: str, value: object, have: str, kind: str) -> str | None:
    """Why a value of ``kind`` cannot go as it is into a column of kind ``have``."""
    if not fits(have, kind):
        return f"column {key!r} holds {have} values, this record has {kind}"
    if have == "float" and kind == "int" and not float_exact(value):  # type: ignore[arg-type]
        return f"column {key!r}: integer {value} has no exact float value"
    return None


class Schema:
    """The known tables; ``plan`` checks records against them and stages what must change."""

    def __init__(self, declared: sa.MetaData | None = None) -> None:
        self.declared = declared
        self.tables: dict[str, TableInfo] = {}
        self.rules: Dialect | None = None  # the database's, once loaded
        self._conn: sa.Connection | None = None  # the transaction of the plan being made

    def load(self, conn: sa.Connection) -> None:
        """Reflect the database's tables (user models take precedence) into memory."""
        self.rules = dialects.get(conn.dialect.name)
        reflected = sa.MetaData()
        reflected.reflect(conn)
        self.tables = {
            name: TableInfo(table)
            for name, table in reflected.tables.items()
            if "." not in name and not name.startswith(OWN_PREFIX)
        }
        if self.declared is not None:
            for name, table in self.declared.tables.items():
                self.tables[name] = TableInfo(table, strict=True)

    def plan(self, records: list[Record], conn: sa.Connection | None = None) -> Plan:
        """Sort ``records``: each fits (perhaps after staged DDL) or is rejected with a reason.
        Records are checked in order, each against the tables as the ones before it left them.
        With ``conn``, an int column is widened only if it stores no int a float cannot hold."""
        plan = Plan()
        self._conn = conn
        verdicts: dict[tuple[str, tuple[str, ...], tuple[type, ...]], str | None] = {}
        odd_floats = self.rules is not None and self.rules.refuses_floats
        for index, rec in enumerate(records):
            values = tuple(rec.data.values())
            shape = (rec.table, tuple(rec.data), tuple(map(type, values)))
            common = (
                int not in shape[2]
                or all(-FLOAT_EXACT <= v <= FLOAT_EXACT for v in values if type(v) is int)
            ) and (not odd_floats or float not in shape[2] or plain_floats(list(values)))
            if common and shape in verdicts:
                # the facts a plan stages only grow, so a record of a table, keys and value
                # types seen before meets the verdict the first one met (an int out of range,
                # one no float holds, or a float the database refuses, is checked on its own)
                reason = verdicts[shape]
            else:
                reason = self._stage(rec, plan)
                if common:
                    verdicts[shape] = reason
            if reason is None:
                plan.accepted.append(index)
            else:
                plan.rejected.append((index, reason))
        return plan

    def _stage(self, rec: Record, plan: Plan) -> str | None:
        """Check one record, staging its table and column changes; a reason if it is refused."""
        info = self.tables.get(rec.table)
        if info is None and rec.table not in plan.new_tables:
            reason = self._new_table_problem(rec.table, plan)
            if reason:
                return reason
        known = plan.known(rec.table, info)
        adds: dict[str, str] = {}
        widen: set[str] = set()
        for key, value in rec.data.items():
            if value is None:
                continue
            kind, reason = value_kind(key, value)
            if kind == "float" and self.rules is not None and self.rules.refuses_floats:
                problem = self.rules.float_problem(value)  # type: ignore[arg-type]
                reason = f"column {key!r}: {problem}" if problem else None
            have = known.get(key) or adds.get(key)
            if reason is None and have is None:
                reason = self._new_column_problem(rec.table, info, key, [*known, *adds])
                adds[key] = kind
            elif reason is None and have == "int" and kind == "float":
                reason = self._widen_problem(rec.table, info, key, plan)
                widen.add(key)
            elif reason is None and have is not None:
                reason = fit_problem(key, value, have, kind)
            if reason:
                return reason
        plan.stage(rec.table, info, adds, widen)
        for key, value in rec.data.items():  # ints an int column takes that block its widening
            if (
                type(value) is int
                and not float_exact(value)
                and not plan.inexact.get((rec.table, key))
            ):
                plan.inexact[rec.table, key] = value
        return None

    def _widen_problem(
        self, table: str, info: TableInfo | None, key: str, plan: Plan
    ) -> str | None:
        """Why int column ``key`` cannot widen to float: it is a model's, or it holds an int no
        float holds (one this plan accepted, or one stored), which the widening would round."""
        if info is not None and info.strict:
            return f"column {key!r} holds int values, this record has float"
        if (table, key) not in plan.inexact:
            stored = None
            if info is not None and key in info.kinds and self._conn is not None:
                stored = stored_inexact(self._conn, info.table, key)
            plan.inexact[table, key] = stored
        value = plan.inexact[table, key]
        if value is None:
            return None
        return (
            f"column {key!r} holds integer {value}, which no float holds exactly: "
            "it cannot widen to float"
        )

    def _new_table_problem(self, table: str, plan: Plan) -> str | None:
        folded = table.lower()
        clash = next((t for t in [*self.tables, *plan.new_tables] if t.lower() == folded), None)
        if clash:
            return f"table name {table!r} clashes with existing table {clash!r}"
        return self.rules.table_problem(table) if self.rules else None

    def _new_column_problem(
        self, table: str, info: TableInfo | None, key: str, known: list[str]
    ) -> str | None:
        if info is not None and info.strict:
            return f"table {table!r} is declared by the models module and has no column {key!r}"
        folded = key.lower()
        clash = next((name for name in known if name.lower() == folded), None)
        if clash:
            return f"column name {key!r} clashes with column {clash!r} (names ignore case in SQL)"
        return self.rules.column_problem(key) if self.rules else None


def stored_inexact(conn: sa.Connection, table: sa.Table, column: str) -> int | None:
    """An int stored in ``column`` of ``table`` that no float holds exactly, or None. Only the
    rows past 2**53 either way are read, and only up to the first such int."""
    col = table.c[column]
    query = sa.select(col).where(sa.or_(col > FLOAT_EXACT, col < -FLOAT_EXACT))
    for (value,) in conn.execute(query):
        if type(value) is int and not float_exact(value):
            return value
    return None
