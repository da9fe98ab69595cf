"""The pointers the database holds, read back: which slots of the ``--arrays`` file committed
rows point at (the sink names those slots, and only those)."""

from __future__ import annotations

import sqlalchemy as sa

from collector.arrays.layout import is_pointer
from collector.errors import DatabaseUnavailable, first_line

_ASK = 500  # ids per query


def committed_pointers(
    engine: sa.Engine, table: str, names: list[str], ids: list[str]
) -> list[tuple[str, bytes]]:
    """(id, pointer) of the rows of ``table`` (those of ``ids``, or all when empty) in the
    columns ``names``; DatabaseUnavailable when the database cannot say."""
    found: list[tuple[str, bytes]] = []
    try:
        with engine.connect() as conn:
            tbl = sa.Table(table, sa.MetaData(), autoload_with=conn)
            cols = [tbl.c[n] for n in names if n in tbl.c]
            if not cols:
                return []
            chunks = [ids[i : i + _ASK] for i in range(0, len(ids), _ASK)] if ids else [None]
            for chunk in chunks:
                query = sa.select(tbl.c["_id"], *cols)
                if chunk is not None:
                    query = query.where(tbl.c["_id"].in_(chunk))
                for row in conn.execute(query):
                    found.extend((row[0], v) for v in row[1:] if is_pointer(v))
    except sa.exc.NoSuchTableError:
        return []
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseUnavailable(first_line(exc)) from exc
    return found
