"""Schema changes: create tables, add columns, widen int columns to float, with each
database's DDL from its dialect (collector.dialects).

Each change runs inside the batch's own transaction (SQLite's DDL is transactional once the
engine issues BEGIN itself, see collector.dialects.sqlite), so an interrupted change leaves no
trace; a scratch table of an older, non-transactional run is dropped when the schema is loaded.
MySQL commits each change at once: the changes run before the rows, a crash between leaves an
empty table or column the next attempt reflects and uses (an attempt that began a change and
failed is followed by a reflection, so retries and bisection never repeat it), and a peer's
change made first is classified stale (or skipped: ADD COLUMN IF NOT EXISTS).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from collector import dialects
from collector.store.classify import SchemaRaced
from collector.store.columns import META, META_COLUMNS, OWN_PREFIX
from collector.store.schema import Plan, Schema, TableInfo, stored_inexact

log = logging.getLogger(__name__)
WIDEN_PREFIX = f"{OWN_PREFIX}widen_"


def apply(conn: sa.Connection, plan: Plan, schema: Schema) -> None:
    """Run the DDL ``plan`` needs, then reflect the changed tables into ``schema``. A table
    both given columns and widened is widened as it is after the ADD COLUMNs, so a rebuild
    copies the new columns too. Raises SchemaRaced when a column to widen has gained an int
    no float holds since the plan was made, or a column made is not of the planned kind."""
    rules = dialects.get(conn.dialect.name)
    types = rules.types
    for name, columns in plan.new_tables.items():
        meta = [
            sa.Column(m.name, rules.meta_type(conn, m), primary_key=m.name == "_id") for m in META
        ]
        data = [sa.Column(c, types[k]) for c, k in columns.items() if c not in META_COLUMNS]
        sa.Table(name, sa.MetaData(), *meta, *data, **rules.table_options).create(conn)
    for name, columns in plan.new_columns.items():
        for column, kind in columns.items():
            rules.add_column(conn, schema.tables[name].table, column, kind)
    for name, widened in plan.widen.items():
        log.info("widening %s of table %s to float", ", ".join(sorted(widened)), name)
        table = reflect(conn, name)
        with rules.writes_locked(conn, table):  # no peer's int lands between check and ALTER
            for column in sorted(widened):  # checked again: a peer may have stored one since
                if stored_inexact(conn, table, column) is not None:
                    raise SchemaRaced(f"column {column!r} of {name!r} gained an int no float holds")
            rules.widen_to_float(conn, table, widened)
    for name in {*plan.new_tables, *plan.new_columns, *plan.widen}:
        schema.tables[name] = info = TableInfo(reflect(conn, name))
        _check_kinds(name, info, plan)


def _check_kinds(name: str, info: TableInfo, plan: Plan) -> None:
    """Raise SchemaRaced when a column the plan made is of another kind than planned: a peer
    made it first (MariaDB's ADD COLUMN IF NOT EXISTS skips it silently, whatever its type)."""
    planned = {**plan.new_tables.get(name, {}), **plan.new_columns.get(name, {})}
    planned.update(dict.fromkeys(plan.widen.get(name, ()), "float"))
    for column, kind in planned.items():
        found = info.kinds.get(column)
        if found != kind:
            raise SchemaRaced(
                f"column {column!r} of {name!r} is {found or 'missing'}, planned {kind}: "
                "a peer's change"
            )


def reflect(conn: sa.Connection, name: str) -> sa.Table:
    """Table ``name`` as the database has it now, inside this transaction."""
    return sa.Table(name, sa.MetaData(), autoload_with=conn)


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
