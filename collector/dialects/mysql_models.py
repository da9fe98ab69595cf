"""``--models`` on MySQL and MariaDB: a declared ``DateTime`` or ``Float`` is created as
``DATETIME(6)`` or ``DOUBLE`` (a plain ``DATETIME`` drops microseconds, ``FLOAT`` is 4 bytes),
a ``String`` without a length as ``LONGTEXT``; a column that exists already, or a ``DECIMAL``
or ``CHAR``, refuses with a reason each value it would store altered (the server rounds or
strips these silently, even in strict mode)."""

from __future__ import annotations

import decimal
import struct
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

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
    database column would alter a value refuses that value (a ValueError, tied to its record)."""
    for column in table.columns:
        found = reflected.get(column.name)
        if found is None or isinstance(column.type, sa.types.TypeDecorator):
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
            column.type = FractionalSeconds(column.name, type(found).__name__.upper(), fsp)
        elif isinstance(found, sa.CHAR | sa.NCHAR) and found.length:
            column.type = Padded(column.name, found.length)
        elif isinstance(found, mysql.FLOAT) and not isinstance(found, mysql.DOUBLE):
            column.type = SinglePrecision(column.name)
        elif (
            isinstance(found, sa.Numeric)
            and not isinstance(found, sa.Float)
            and found.scale is not None
            and found.precision is not None
        ):
            column.type = Digits(column.name, found.precision, found.scale)


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


class FractionalSeconds(sa.types.TypeDecorator):  # type: ignore[type-arg]
    """A DATETIME or TIMESTAMP column with fsp < 6: a datetime with more digits of a second
    is refused."""

    impl = sa.DateTime
    cache_ok = True

    def __init__(self, name: str, kind: str, fsp: int) -> None:
        super().__init__()
        self.name, self.kind, self.fsp = name, kind, fsp

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is not None and value.microsecond % 10 ** (6 - self.fsp):
            raise ValueError(
                f"column {self.name!r} is {self.kind}({self.fsp}): {value} would lose its "
                f"microseconds (make it DATETIME(6))"
            )
        return value


class Padded(sa.types.TypeDecorator):  # type: ignore[type-arg]
    """A CHAR(n) column: the server strips trailing spaces as it reads one, so a string
    ending in a space is refused."""

    impl = sa.String
    cache_ok = True

    def __init__(self, name: str, length: int) -> None:
        super().__init__(length)
        self.name, self.size = name, length

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if isinstance(value, str) and value.endswith(" "):
            raise ValueError(
                f"column {self.name!r} is CHAR({self.size}): {value!r} ends in a space, which "
                f"the server strips as the value is read (make it VARCHAR({self.size}))"
            )
        return value


class SinglePrecision(sa.types.TypeDecorator):  # type: ignore[type-arg]
    """A 4-byte FLOAT column: only a number it stores and reads back as sent is taken (one a
    float32 holds exactly that the server prints in at most 6 significant digits)."""

    impl = sa.Float
    cache_ok = True

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return value
        as_float = float(value)
        single = struct.unpack("f", struct.pack("f", as_float))[0] if abs(as_float) < 3e38 else 0
        if not (as_float == value == single == float(f"{as_float:.6g}")):
            raise ValueError(
                f"column {self.name!r} is FLOAT (single precision): {value!r} would come back "
                "as another number (make it DOUBLE)"
            )
        return value


class Digits(sa.types.TypeDecorator):  # type: ignore[type-arg]
    """A DECIMAL(p, s) column: a number with more than s decimal places (rounded by the server)
    or more than p - s digits before the point is refused."""

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, name: str, precision: int, scale: int) -> None:
        super().__init__(precision, scale)
        self.name, self.digits, self.places = name, precision, scale

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return value
        number = decimal.Decimal(repr(value) if isinstance(value, float) else value)
        column = f"column {self.name!r} is DECIMAL({self.digits}, {self.places})"
        if not number.is_finite():
            raise ValueError(f"{column}: {value!r} is not a finite number")
        if number.is_zero():
            return value
        _sign, digits, exponent = number.normalize().as_tuple()
        assert isinstance(exponent, int)  # finite
        if -exponent > self.places:
            raise ValueError(f"{column}: {value!r} has more than {self.places} decimal places")
        if len(digits) + exponent > self.digits - self.places:
            raise ValueError(
                f"{column}: {value!r} has more than {self.digits - self.places} digits "
                "before the point"
            )
        return value
