"""The rules about columns, once: metadata columns and value kinds.

Every path that writes a row (table creation, the generic insert, each dialect's fast writer)
reads the metadata columns from ``META``; the names a database refuses are its dialect's
(collector.dialects).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from workers.arrays import Array

INT64 = (-(2**63), 2**63 - 1)
FLOAT_EXACT = 2**53  # every int of at most this size is a float exactly; a bigger one may not be
OWN_PREFIX = "_rc_"  # the collector's scratch tables; a record's names start with a letter

KIND_OF_TYPE: dict[type, str] = {
    bool: "bool", int: "int", float: "float", str: "str", bytes: "bytes",
    dt.datetime: "datetime", list: "json", dict: "json",
    Array: "bytes",  # a numpy array's payload: binary, told from other bytes by its marker
}  # fmt: skip
SQL_TYPE: dict[str, Any] = {
    "bool": sa.Boolean, "int": sa.BigInteger, "float": sa.Float, "str": sa.Text,
    "bytes": sa.LargeBinary, "datetime": sa.DateTime, "json": sa.JSON,
}  # fmt: skip


@dataclass(frozen=True)
class MetaColumn:
    """One metadata column: its SQL type, the Record attribute that fills it (None: ``_error``,
    which comes from the record's data), and whether tables made before it existed lack it."""

    name: str
    sql_type: Any
    attribute: str | None
    later: bool = False

    def column(self) -> sa.Column[Any]:
        return sa.Column(self.name, self.sql_type, primary_key=self.name == "_id")


META = (
    MetaColumn("_id", sa.String(255), "id"),
    MetaColumn("_ts", sa.DateTime, "ts"),
    MetaColumn("_host", sa.Text, "host"),
    MetaColumn("_pid", sa.Integer, "pid"),
    MetaColumn("_job", sa.Text, "job"),
    MetaColumn("_elapsed", sa.Float, "elapsed", later=True),
    MetaColumn("_maxrss", sa.BigInteger, "maxrss", later=True),
    MetaColumn("_error", sa.Text, None),
)
META_COLUMNS = tuple(m.name for m in META)
FROM_RECORD = {m.name: m.attribute for m in META if m.attribute is not None}
LATER = [m for m in META if m.later]


def kind_of_sql(sql_type: sa.types.TypeEngine[Any]) -> str:
    """The value kind a (reflected or declared) column type holds; ``other`` when none fits.
    A TypeDecorator of a model holds what its underlying type holds."""
    if isinstance(sql_type, sa.types.TypeDecorator):
        sql_type = sql_type.impl_instance
    checks = (
        (sa.Boolean, "bool"), (sa.Integer, "int"), (sa.Float, "float"), (sa.Numeric, "float"),
        (sa.DateTime, "datetime"), (sa.JSON, "json"), (sa.LargeBinary, "bytes"),
        (sa.String, "str"),
    )  # fmt: skip
    for cls, kind in checks:
        if isinstance(sql_type, cls):
            return kind
    return "other"


def kind_of_value(value: Any) -> str | None:
    """The kind of a decoded value, or None for a type no column holds."""
    return KIND_OF_TYPE.get(type(value))


def float_exact(value: int) -> bool:
    """Whether a float holds the int ``value`` exactly (Python compares int and float exactly)."""
    return -FLOAT_EXACT <= value <= FLOAT_EXACT or float(value) == value


def plain_floats(values: list[Any]) -> bool:
    """Whether no float among ``values`` is NaN, an infinity or -0.0, the floats a database may
    not store as they are (its dialect's float_problem judges each one)."""
    try:
        total = sum(values)  # NaN and the infinities carry through (one that overflows: judged)
    except (TypeError, OverflowError):  # None, or values of other kinds: the floats alone
        values = [v for v in values if type(v) is float]
        total = sum(values)
    if total - total != 0:
        return False
    return 0.0 not in values or all(
        math.copysign(1.0, v) > 0 for v in values if type(v) is float and v == 0
    )


def fits(column_kind: str, value_kind: str) -> bool:
    """Whether a value of ``value_kind`` may be stored as it is in a ``column_kind`` column."""
    return column_kind == value_kind or (column_kind == "float" and value_kind == "int")
