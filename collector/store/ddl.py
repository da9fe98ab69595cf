"""Schema changes: create tables, add columns, widen int columns to float.

Each change runs inside the batch's own transaction (SQLite's DDL is transactional once the
engine issues BEGIN itself, see collector.db), so an interrupted change leaves no trace; a
scratch table of an older, non-transactional run is dropped when the schema is loaded.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from collector.store.columns import META, META_COLUMNS, OWN_PREFIX, SQL_TYPE
from collector.store.schema import Plan, Schema, TableInfo

log = logging.getLogger(__name__)
WIDEN_PREFIX = f"{OWN_PREFIX}widen_"


def apply(conn: sa.Connection, plan: Plan, schema: Schema) -> None:
    """Run the DDL ``plan`` needs, then reflect the changed tables into ``schema``."""
    for name, columns in plan.new_tables.items():
        data = [sa.Column(c, SQL_TYPE[k]) for c, k in columns.items() if c not in META_COLUMNS]
        sa.Table(name, sa.MetaData(), *(m.column() for m in META), *data).create(conn)
    for name, columns in plan.new_columns.items():
        for column, kind in columns.items():
            add_column(conn, schema.tables[name].table, column, kind)
    for name, widened in plan.widen.items():
        widen_to_float(conn, schema.tables[name].table, widened)
    for name in {*plan.new_tables, *plan.new_columns, *plan.widen}:
        schema.tables[name] = TableInfo(sa.Table(name, sa.MetaData(), autoload_with=conn))


def add_column(conn: sa.Connection, table: sa.Table, column: str, kind: str) -> None:
    """ALTER TABLE ... ADD COLUMN for a name that already passed the identifier rule."""
    prep = conn.dialect.identifier_preparer
    sql_type = SQL_TYPE[kind]().compile(dialect=conn.dialect)
    conn.exec_driver_sql(
        f"ALTER TABLE {prep.format_table(table)} ADD COLUMN {prep.quote(column)} {sql_type}"
    )


def widen_to_float(conn: sa.Connection, table: sa.Table, columns: set[str]) -> None:
    """Turn integer columns into float columns, keeping every row (SQLite: rebuild the table)."""
    prep = conn.dialect.identifier_preparer
    log.info("widening %s of table %s to float", ", ".join(sorted(columns)), table.name)
    if conn.dialect.name != "sqlite":
        float_sql = sa.Float().compile(dialect=conn.dialect)
        for column in sorted(columns):
            quoted = prep.quote(column)
            conn.exec_driver_sql(
                f"ALTER TABLE {prep.format_table(table)} ALTER COLUMN {quoted} "
                f"TYPE {float_sql} USING {quoted}::{float_sql}"
            )
        return
    temp_name = f"{WIDEN_PREFIX}{table.name}"
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


def drop_leftovers(conn: sa.Connection) -> list[str]:
    """Drop the scratch tables interrupted widenings left: ours (``_rc_widen_*``), and the
    empty ``<table>__widen`` copies of older versions, which created them outside the
    transaction that filled them. Returns their names."""
    prep = conn.dialect.identifier_preparer
    inspector = sa.inspect(conn)
    names = set(inspector.get_table_names())
    left = [t for t in names if t.startswith(WIDEN_PREFIX)]
    for name in names:
        base = name.removesuffix("__widen")
        if base != name and base in names and _same_columns(inspector, name, base):
            empty = conn.exec_driver_sql(f"SELECT 1 FROM {prep.quote(name)} LIMIT 1").first()  # noqa: S608
            if empty is None:
                left.append(name)
    for name in left:
        log.warning("dropping %s, left by an interrupted schema change", name)
        conn.exec_driver_sql(f"DROP TABLE {prep.quote(name)}")
    return left


def _same_columns(inspector: sa.Inspector, one: str, other: str) -> bool:
    return [c["name"] for c in inspector.get_columns(one)] == [
        c["name"] for c in inspector.get_columns(other)
    ]
