"""Tables in memory: the identifier rule, types from values, and planning creates and changes.

The schema is reflected once and kept; a batch is planned against it (which records fit, which
tables and columns must be created or widened), and only the DDL a plan needs touches the database.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS as _PG_RESERVED
from sqlalchemy.dialects.sqlite.base import SQLiteIdentifierPreparer

from workers.record import Record

RESERVED = frozenset(_PG_RESERVED) | frozenset(SQLiteIdentifierPreparer.reserved_words)
INT64 = (-(2**63), 2**63 - 1)

KIND_OF_TYPE: dict[type, str] = {
    bool: "bool", int: "int", float: "float", str: "str", bytes: "bytes",
    dt.datetime: "datetime", list: "json", dict: "json",
}  # fmt: skip
SQL_TYPE: dict[str, Any] = {
    "bool": sa.Boolean, "int": sa.BigInteger, "float": sa.Float, "str": sa.Text,
    "bytes": sa.LargeBinary, "datetime": sa.DateTime, "json": sa.JSON,
}  # fmt: skip
META_COLUMNS = ("_id", "_ts", "_host", "_pid", "_job", "_elapsed", "_maxrss", "_error")
LATER_META = {"_elapsed": "float", "_maxrss": "int"}  # added to tables made before they existed


def meta_columns() -> list[sa.Column]:
    """The metadata columns every auto-created table starts with."""
    return [
        sa.Column("_id", sa.String(255), primary_key=True),
        sa.Column("_ts", sa.DateTime),
        sa.Column("_host", sa.Text),
        sa.Column("_pid", sa.Integer),
        sa.Column("_job", sa.Text),
        sa.Column("_elapsed", sa.Float),
        sa.Column("_maxrss", sa.BigInteger),
        sa.Column("_error", sa.Text),
    ]


def kind_of_sql(sql_type: sa.types.TypeEngine) -> str:
    """The value kind a (reflected or declared) column type holds; ``other`` when none fits."""
    checks = (
        (sa.Boolean, "bool"), (sa.Integer, "int"), (sa.Float, "float"), (sa.Numeric, "float"),
        (sa.DateTime, "datetime"), (sa.JSON, "json"), (sa.LargeBinary, "bytes"),
        (sa.String, "str"),
    )  # fmt: skip
    for cls, kind in checks:
        if isinstance(sql_type, cls):
            return kind
    return "other"


def fits(column_kind: str, value_kind: str) -> bool:
    """Whether a value of ``value_kind`` may be stored as it is in a ``column_kind`` column."""
    return column_kind == value_kind or (column_kind == "float" and value_kind == "int")


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
    """A batch sorted against the schema: records per table, rejects, and the DDL needed first."""

    accepted: dict[str, list[Record]] = field(default_factory=lambda: defaultdict(list))
    rejected: list[tuple[Record, str]] = field(default_factory=list)
    new_tables: dict[str, dict[str, str]] = field(default_factory=dict)
    new_columns: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    widen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    @property
    def needs_ddl(self) -> bool:
        return bool(self.new_tables or self.new_columns or self.widen)


class Schema:
    """The known tables; ``plan`` checks records against them and stages what must change."""

    def __init__(self, declared: sa.MetaData | None = None) -> None:
        self.declared = declared
        self.tables: dict[str, TableInfo] = {}

    def load(self, conn: sa.Connection) -> None:
        """Reflect the database's tables (user models take precedence) into memory."""
        reflected = sa.MetaData()
        reflected.reflect(conn)
        self.tables = {
            name: TableInfo(table) for name, table in reflected.tables.items() if "." not in name
        }
        if self.declared is not None:
            for name, table in self.declared.tables.items():
                self.tables[name] = TableInfo(table, strict=True)

    def plan(self, records: list[Record]) -> Plan:
        """Sort ``records``: each fits (perhaps after staged DDL) or is rejected with a reason."""
        plan = Plan()
        for rec in records:
            reason = self._stage(rec, plan)
            if reason is None:
                plan.accepted[rec.table].append(rec)
            else:
                plan.rejected.append((rec, reason))
        return plan

    def _stage(self, rec: Record, plan: Plan) -> str | None:
        """Check one record, staging its table/column changes in ``plan``; a reason if it fails."""
        info = self.tables.get(rec.table)
        staged_table = plan.new_tables.get(rec.table)
        if info is None and staged_table is None:
            if rec.table.lower() in RESERVED:
                return f"table name {rec.table!r} is a reserved SQL word"
            clash = next((t for t in self.tables if t.lower() == rec.table.lower()), None)
            if clash:
                return f"table name {rec.table!r} clashes with existing table {clash!r}"
        if info is not None and info.has_id and not info.strict:
            for column, column_kind in LATER_META.items():
                if column not in info.kinds:
                    plan.new_columns[rec.table].setdefault(column, column_kind)
        kinds = info.kinds if info else {}
        staged = staged_table if staged_table is not None else plan.new_columns.get(rec.table, {})
        adds: dict[str, str] = {}
        widen: set[str] = set()
        for key, value in rec.data.items():
            if value is None:
                continue
            kind = KIND_OF_TYPE.get(type(value))
            if kind is None:
                return f"column {key!r}: unsupported value type {type(value).__name__}"
            if kind == "int" and not INT64[0] <= value <= INT64[1]:
                return f"column {key!r}: integer {value} is outside the 64-bit range"
            have = staged.get(key) or kinds.get(key) or adds.get(key)
            if key in plan.widen.get(rec.table, ()):
                have = "float"
            if have is None:
                reason = self._new_column_problem(rec.table, info, key, [*staged, *adds])
                if reason:
                    return reason
                adds[key] = kind
            elif have == "int" and kind == "float" and not (info and info.strict):
                widen.add(key)
            elif not fits(have, kind):
                return f"column {key!r} holds {have} values, this record has {kind}"
        if info is None and staged_table is None:
            plan.new_tables[rec.table] = adds
        elif staged_table is not None:
            staged_table.update(adds)
            for key in widen:
                staged_table[key] = "float"
            return None
        elif adds:
            plan.new_columns[rec.table].update(adds)
        if widen:
            for key in widen:
                if key in plan.new_columns.get(rec.table, {}):
                    plan.new_columns[rec.table][key] = "float"
                else:
                    plan.widen[rec.table].add(key)
        return None

    @staticmethod
    def _new_column_problem(
        table: str, info: TableInfo | None, key: str, staged: list[str]
    ) -> str | None:
        if info is not None and info.strict:
            return f"table {table!r} is declared by the models module and has no column {key!r}"
        if key.lower() in RESERVED:
            return f"column name {key!r} is a reserved SQL word"
        folded = key.lower()
        clash = info.folded.get(folded) if info else None
        clash = clash or next((name for name in staged if name.lower() == folded), None)
        if clash:
            return f"column name {key!r} clashes with column {clash!r} (names ignore case in SQL)"
        return None

    def apply(self, conn: sa.Connection, plan: Plan) -> None:
        """Run the DDL ``plan`` needs (create tables, add and widen columns), then reflect them."""
        for name, columns in plan.new_tables.items():
            data_columns = [
                sa.Column(c, SQL_TYPE[k]) for c, k in columns.items() if c not in META_COLUMNS
            ]  # a first record with _error must not add that column twice
            sa.Table(name, sa.MetaData(), *meta_columns(), *data_columns).create(
                conn, checkfirst=True
            )
        for name, columns in plan.new_columns.items():
            for column, kind in columns.items():
                add_column(conn, self.tables[name].table, column, kind)
        for name, widened in plan.widen.items():
            widen_to_float(conn, self.tables[name].table, widened)
        for name in {*plan.new_tables, *plan.new_columns, *plan.widen}:
            self.tables[name] = TableInfo(sa.Table(name, sa.MetaData(), autoload_with=conn))


def add_column(conn: sa.Connection, table: sa.Table, column: str, kind: str) -> None:
    """ALTER TABLE ... ADD COLUMN for a name that already passed the identifier rule."""
    prep = conn.dialect.identifier_preparer
    sql_type = SQL_TYPE[kind]().compile(dialect=conn.dialect)
    if_not_exists = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""
    conn.exec_driver_sql(
        f"ALTER TABLE {prep.format_table(table)} ADD COLUMN {if_not_exists}"
        f"{prep.quote(column)} {sql_type}"
    )


def widen_to_float(conn: sa.Connection, table: sa.Table, columns: set[str]) -> None:
    """Turn integer columns into float columns, keeping every row (SQLite: rebuild the table)."""
    prep = conn.dialect.identifier_preparer
    if conn.dialect.name != "sqlite":
        float_sql = sa.Float().compile(dialect=conn.dialect)
        for column in sorted(columns):
            quoted = prep.quote(column)
            conn.exec_driver_sql(
                f"ALTER TABLE {prep.format_table(table)} ALTER COLUMN {quoted} "
                f"TYPE {float_sql} USING {quoted}::{float_sql}"
            )
        return
    temp_name = f"{table.name}__widen"
    copy = sa.Table(
        temp_name,
        sa.MetaData(),
        *(
            sa.Column(c.name, sa.Float if c.name in columns else c.type, primary_key=c.primary_key)
            for c in table.columns
        ),
    )
    copy.create(conn)
    names = ", ".join(prep.quote(c.name) for c in table.columns)
    old, new = prep.quote(table.name), prep.quote(temp_name)  # names passed the identifier rule
    conn.exec_driver_sql(f"INSERT INTO {new} ({names}) SELECT {names} FROM {old}")  # noqa: S608
    conn.exec_driver_sql(f"DROP TABLE {old}")
    conn.exec_driver_sql(f"ALTER TABLE {new} RENAME TO {old}")
