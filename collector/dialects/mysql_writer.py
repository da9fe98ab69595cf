"""MySQL's writers: the conflict rule without ON CONFLICT. Rows whose ids the table does not
hold go straight in; otherwise into a temporary staging table, then the new ids inserted from
it and one UPDATE ... JOIN for the rows the rule replaces. Never ON DUPLICATE KEY UPDATE (its
assignments see the ones made before them in the same row), never INSERT IGNORE (it turns
errors into warnings and stores "the closest valid value"). A temporary table's CREATE and DROP
commit nothing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from collector.store import conflict
from collector.store.schema import TableInfo
from collector.store.writers import Layout, Writer, count_stored
from workers.record import Record

STAGE = "_rc_stage"  # a temporary table per connection; no record's name starts with "_"
PACKET_MARGIN = 4096  # bytes of a statement besides its rows' values


def staged_sql(dialect: sa.Dialect, table: sa.Table, columns: list[str]) -> tuple[Any, ...]:
    """The statements of the staged path for rows of ``columns``: set up the stage, insert
    the new ids from it, replace what the rule replaces (None: never), drop it."""
    prep = dialect.identifier_preparer
    name, stage = prep.format_table(table), prep.quote(STAGE)
    names = ", ".join(prep.quote(c) for c in columns)
    picked = ", ".join(f"s.{prep.quote(c)}" for c in columns)
    new = sa.table(STAGE, *(sa.column(c) for c in columns))
    replace = conflict.replaces(table, new.c, columns)
    values = {
        c: new.c[c.name] if c.name in columns else sa.null()
        for c in table.columns
        if c.name != "_id"
    }
    replace_sql = None
    if replace is not None and values:
        update = sa.update(table).where(table.c["_id"] == new.c["_id"], replace).values(values)
        replace_sql = str(update.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return (
        (f"DROP TEMPORARY TABLE IF EXISTS {stage}", f"CREATE TEMPORARY TABLE {stage} LIKE {name}"),
        f"INSERT INTO {name} ({names}) SELECT {picked} FROM {stage} AS s "  # noqa: S608
        f"LEFT JOIN {name} AS t ON t.`_id` = s.`_id` WHERE t.`_id` IS NULL",
        replace_sql,
        f"DROP TEMPORARY TABLE {stage}",
    )


class MultiRowWriter(Writer):
    """Multi-row INSERTs of driver-level values, each statement under the server's
    ``max_allowed_packet``; a row that cannot fit in one is refused with that reason."""

    bound = True

    def statement(self, info: TableInfo, layout: Layout) -> Any:
        prep = self.dialect.identifier_preparer
        names = ", ".join(prep.quote(c) for c in layout.columns)
        plain = f"INSERT INTO {prep.format_table(info.table)} ({names}) VALUES "  # noqa: S608
        staged = f"INSERT INTO {prep.quote(STAGE)} ({names}) VALUES "  # noqa: S608
        return plain, staged, staged_sql(self.dialect, info.table, layout.columns)

    def insert(self, conn: sa.Connection, info: TableInfo, records: list[Record]) -> int:
        layout, (plain, staged, (setup, insert_new, replace, drop)) = self.prepared(info, records)
        rows = layout.rows(records)
        stored = count_stored(conn, info.table, [record.id for record in records])
        raw = conn.connection.dbapi_connection
        dbapi = self.dialect.loaded_dbapi
        statement = plain
        try:
            with raw.cursor() as cur:  # type: ignore[union-attr]
                values = _values(cur, rows, _packet_limit(conn, cur))
                if not stored:
                    _insert_many(cur, plain, values)
                    return len(rows)
                for statement in setup:
                    cur.execute(statement)
                statement = staged
                _insert_many(cur, staged, values)
                statement = insert_new
                added: int = cur.execute(insert_new)
                if replace is not None:
                    statement = replace
                    cur.execute(replace)
                statement = drop
                cur.execute(drop)
                return added
        except dbapi.Error as exc:  # the same exception classes SQLAlchemy's own calls raise
            raise sa.exc.DBAPIError.instance(
                statement, None, exc, dbapi.Error, dialect=self.dialect
            ) from exc


class StagedWriter(Writer):
    """SQLAlchemy's own insert (it fills a model's Python-side column defaults), into the
    table or, when an id is stored already, into the stage, whole rows."""

    def statement(self, info: TableInfo, layout: Layout) -> Any:
        stage = info.table.to_metadata(sa.MetaData(), name=STAGE)
        columns = [c.name for c in info.table.columns]
        return stage, staged_sql(self.dialect, info.table, columns)

    def insert(self, conn: sa.Connection, info: TableInfo, records: list[Record]) -> int:
        layout, (stage, (setup, insert_new, replace, drop)) = self.prepared(info, records)
        rows = [dict(zip(layout.columns, row, strict=True)) for row in layout.rows(records)]
        stored = 0
        if info.has_id:
            stored = count_stored(conn, info.table, [record.id for record in records])
        if not stored:
            conn.execute(info.table.insert(), rows)
            return len(rows)
        for statement in setup:
            conn.exec_driver_sql(statement)
        conn.execute(stage.insert(), rows)
        added = conn.exec_driver_sql(insert_new).rowcount
        if replace is not None:
            conn.exec_driver_sql(replace)
        conn.exec_driver_sql(drop)
        return added


def _packet_limit(conn: sa.Connection, cur: Any) -> int:
    """The server's ``max_allowed_packet``, read once per connection."""
    info = conn.connection.info
    if "rc_max_packet" not in info:
        cur.execute("SELECT @@max_allowed_packet")
        info["rc_max_packet"] = int(cur.fetchone()[0])
    limit: int = info["rc_max_packet"]
    return limit


def _values(cur: Any, rows: list[tuple[Any, ...]], limit: int) -> list[tuple[bytes, int]]:
    """Each row as the bytes of its ``(...)`` in an INSERT, with the room a statement has; a
    row that cannot fit in one statement is refused (a ValueError: tied to its record)."""
    if not rows:
        return []
    encoding = cur.connection.encoding
    template = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
    room = limit - PACKET_MARGIN
    out = []
    for row in rows:
        value = cur.mogrify(template, row).encode(encoding, "surrogateescape")
        if len(value) > room:
            raise ValueError(
                f"the row is {len(value)} bytes as SQL, over the server's "
                f"max_allowed_packet of {limit} bytes"
            )
        out.append((value, room))
    return out


def _insert_many(cur: Any, prefix: str, values: list[tuple[bytes, int]]) -> None:
    """``prefix`` (``INSERT ... VALUES ``) with as many rows per statement as fit."""
    head = prefix.encode()
    sql = bytearray(head)
    for value, room in values:
        if len(sql) > len(head) and len(sql) + len(value) + 1 > room:
            cur.execute(bytes(sql))
            sql = bytearray(head)
        elif len(sql) > len(head):
            sql += b","
        sql += value
    if len(sql) > len(head):
        cur.execute(bytes(sql))
