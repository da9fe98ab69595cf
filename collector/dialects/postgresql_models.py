"""``--models`` on PostgreSQL: each declared column whose database column would store a value
altered refuses that value with a reason (collector.dialects.exact). PostgreSQL rounds a
``NUMERIC(p, s)`` to its scale, a ``TIMESTAMP(p)`` to its precision and a ``REAL`` to 4 bytes,
all silently, and pads a ``CHAR(n)``; a too long ``VARCHAR(n)`` or an int out of a
``SMALLINT``/``INTEGER`` is refused here with its reason before the server refuses the
statement."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from collector.dialects import exact, exact_numbers
from collector.errors import ConfigError


def guard(table: sa.Table, reflected: dict[str, Any]) -> None:
    """For ``table`` as it is (``reflected``: column name -> type): each declared column a
    guard of ``exact`` that refuses what its database column would alter; a ConfigError when
    the ``_ts`` column itself would round every emit time."""
    for column in table.columns:
        found, name, declared = reflected.get(column.name), column.name, column.type
        if found is None:
            continue
        precision = getattr(found, "precision", None)
        if isinstance(found, sa.DateTime) and precision is not None and precision < 6:
            if name == "_ts":
                raise ConfigError(
                    f"model table {table.name!r}: column _ts is TIMESTAMP({precision}), which "
                    f"would round every emit time: ALTER TABLE {_quoted(table.name)} "
                    'ALTER COLUMN "_ts" TYPE TIMESTAMP(6)'
                )
            column.type = exact.FractionalSeconds(
                name, "TIMESTAMP", precision, "TIMESTAMP(6)", declared
            )
        elif isinstance(found, sa.REAL):
            column.type = exact_numbers.SinglePrecision(
                name, "REAL", "DOUBLE PRECISION", True, declared
            )
        elif isinstance(found, sa.Numeric) and not isinstance(found, sa.Float):
            column.type = exact_numbers.Digits(
                name, "NUMERIC", found.precision, found.scale, declared
            )
        elif isinstance(found, sa.SmallInteger):
            column.type = exact_numbers.IntRange(name, "SMALLINT", 16, declared)
        elif isinstance(found, sa.BigInteger):
            column.type = exact_numbers.IntRange(name, "BIGINT", 64, declared)
        elif isinstance(found, sa.Integer):
            column.type = exact_numbers.IntRange(name, "INTEGER", 32, declared)
        elif isinstance(found, sa.CHAR | sa.NCHAR) and found.length:
            column.type = exact.Padded(name, found.length, declared)
        elif isinstance(found, sa.String) and found.length:
            column.type = exact.Length(name, found.length, declared)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
