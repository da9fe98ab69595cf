"""``--models`` on MySQL and MariaDB: a declared ``DateTime`` or ``Float`` is created as
``DATETIME(6)`` or ``DOUBLE`` (a plain ``DATETIME`` drops microseconds, ``FLOAT`` is 4 bytes),
a ``String`` without a length as ``LONGTEXT``; a column that exists already, or a ``DECIMAL``
or ``CHAR``, refuses with a reason each value it would store altered (the server rounds or
strips these silently, even in strict mode)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from collector.dialects import exact, exact_numbers
from collector.errors import ConfigError


def nopad(conn: sa.Connection) -> str:
    """The binary collation without padding: ids differing in case or trailing spaces differ."""
    return "utf8mb4_nopad_bin" if conn.dialect.is_mariadb else "utf8mb4_0900_bin"  # type: ignore[attr-defined]


def create_exact(table: sa.Table, datetime: type, double: type, id_collation: str) -> None:
    """Before ``table`` is created: its plain DateTime and Float columns as ``datetime`` and
    ``double`` (the dialect's DATETIME(6) and DOUBLE), a String without a length as LONGTEXT,
    a String ``_id`` in ``id_collation``. A user's own TypeDecorator is kept."""
    for column in table.columns:
        declared = column.type
        if isinstance(declared, sa.types.TypeDecorator):
            continue
        if column.name == "_id" and isinstance(declared, sa.String) and declared.length:
            if declared.collation is None:
                column.type = mysql.VARCHAR(
                    declared.length, charset="utf8mb4", collation=id_collation
                )
        elif isinstance(declared, sa.DateTime) and getattr(declared, "fsp", None) is None:
            column.type = datetime(timezone=declared.timezone)
        elif isinstance(declared, sa.Float) and not isinstance(declared, sa.Double | mysql.DOUBLE):
            column.type = double()
        elif (
            isinstance(declared, sa.String)
            and type(declared) in (sa.String, sa.Unicode)
            and declared.length is None
        ):
            column.type = mysql.LONGTEXT()  # MySQL has no VARCHAR without a length


def guard(table: sa.Table, reflected: dict[str, Any]) -> None:
    """For ``table`` as it is (``reflected``: column name -> type): each declared column whose
    database column would alter a value refuses that value (collector.dialects.exact)."""
    for column in table.columns:
        found, declared = reflected.get(column.name), column.type
        if found is None:
            continue
        if isinstance(found, sa.DateTime) and (getattr(found, "fsp", None) or 0) < 6:
            fsp = getattr(found, "fsp", None) or 0
            if column.name == "_ts":
                quoted, kind = table.name.replace("`", "``"), type(found).__name__.upper()
                raise ConfigError(
                    f"model table {table.name!r}: column _ts is {kind}({fsp}), which would "
                    f"round every emit time to the second: ALTER TABLE `{quoted}` "
                    "MODIFY `_ts` DATETIME(6)"
                )
            kind = type(found).__name__.upper()
            column.type = exact.FractionalSeconds(column.name, kind, fsp, "DATETIME(6)", declared)
        elif isinstance(found, sa.CHAR | sa.NCHAR) and found.length:
            column.type = exact.TrailingSpace(column.name, found.length, declared)
        elif isinstance(found, sa.Integer) and not isinstance(declared, sa.Boolean):
            kind = type(found).__name__.upper()  # the server refuses an int out of its range
            column.type = exact_numbers.IntRange(column.name, kind, 64, declared)
        elif isinstance(found, mysql.FLOAT) and not isinstance(found, mysql.DOUBLE):
            column.type = exact_numbers.SinglePrecision(
                column.name, "FLOAT", "DOUBLE", False, declared
            )
        elif (
            isinstance(found, sa.Numeric)
            and not isinstance(found, sa.Float)
            and found.scale is not None
            and found.precision is not None
        ):
            column.type = exact_numbers.Digits(
                column.name, "DECIMAL", found.precision, found.scale, declared
            )


def guard_id(conn: sa.Connection, table: sa.Table) -> None:
    """A ConfigError naming the ALTER TABLE to run when ``table``'s ``_id`` compares in a
    collation that holds ids differing in case or trailing spaces equal: the second record of
    such a pair would replace the first's row, or be counted stored with no row of its own."""
    query = sa.text(
        "SELECT COLLATION_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE "
        "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table AND COLUMN_NAME = '_id'"
    )
    found = conn.execute(query, {"table": table.name}).first()
    if found is None or found[0] is None or _apart(found[0]):
        return  # no _id, a binary string type, or a binary collation without padding
    quoted = table.name.replace("`", "``")
    raise ConfigError(
        f"model table {table.name!r}: column _id compares in collation {found[0]}, which holds "
        "ids differing in case or trailing spaces equal (one record of such a pair would be "
        f"lost): ALTER TABLE `{quoted}` MODIFY `_id` {str(found[1]).upper()} CHARACTER SET "
        f"utf8mb4 COLLATE {nopad(conn)}"
    )


def _apart(collation: str) -> bool:
    """Whether ``collation`` compares byte for byte without padding (MariaDB's ``*_nopad_bin``,
    MySQL 8's ``*_0900_bin``)."""
    return collation.endswith(("_nopad_bin", "_0900_bin"))
