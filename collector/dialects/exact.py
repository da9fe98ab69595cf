"""``--models``: column types that refuse a value their database column would store altered.

A database rounds a decimal to its scale, a timestamp to its precision, a number to a 4-byte
float, and pads a ``CHAR(n)``, all silently; each dialect's ``guard_model`` puts one of these
types on a declared column whose database column does that. A refused value raises a
ValueError as it is bound, which ties it to its record (dead-lettered with the reason).

A user's own TypeDecorator is kept inside the guard: its ``process_bind_param`` converts the
value first, and what it returns (the value the column receives) is what is checked.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


class Guard(sa.types.TypeDecorator):  # type: ignore[type-arg]
    """A column type that refuses a value ``problem`` finds fault with, and binds the rest
    through ``bind`` (the type it wraps, a user's TypeDecorator, converts first)."""

    impl = sa.types.NullType
    cache_ok = True

    def __init__(self, name: str, wrapped: sa.types.TypeEngine[Any] | None = None) -> None:
        super().__init__()
        self.name = name
        self.wrapped = wrapped if isinstance(wrapped, sa.types.TypeDecorator) else None
        self.impl = self.wrapped.impl_instance if self.wrapped else self.base()  # type: ignore[assignment]

    def base(self) -> sa.types.TypeEngine[Any]:
        """The column type underneath when no user's TypeDecorator is wrapped."""
        raise NotImplementedError

    def problem(self, value: Any) -> str | None:
        """What the column would do to ``value``, after ``column 'x' is``; None: stored as is."""
        raise NotImplementedError

    def bind(self, value: Any) -> Any:
        """The value as it is sent to the driver (a float as its exact decimal, say)."""
        return value

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if self.wrapped is not None:
            value = self.wrapped.process_bind_param(value, dialect)
        if value is None:
            return value
        problem = self.problem(value)
        if problem is not None:
            raise ValueError(f"column {self.name!r} is {problem}")
        return self.bind(value)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if self.wrapped is None:
            return value
        return self.wrapped.process_result_value(value, dialect)


class FractionalSeconds(Guard):
    """A ``DATETIME(p)``/``TIMESTAMP(p)`` column with p < 6: a datetime with more digits of a
    second is refused."""

    cache_ok = True

    def __init__(
        self,
        name: str,
        kind: str,
        fsp: int,
        advice: str,
        wrapped: sa.types.TypeEngine[Any] | None = None,
    ) -> None:
        self.kind, self.fsp, self.advice = kind, fsp, advice
        super().__init__(name, wrapped)

    def base(self) -> sa.types.TypeEngine[Any]:
        return sa.DateTime()

    def problem(self, value: Any) -> str | None:
        if getattr(value, "microsecond", 0) % 10 ** (6 - self.fsp):
            return (
                f"{self.kind}({self.fsp}): {value} would lose its microseconds "
                f"(make it {self.advice})"
            )
        return None


class Sized(Guard):
    """A guard of a string column of ``length`` characters (CHAR(n), VARCHAR(n))."""

    cache_ok = True

    def __init__(
        self, name: str, length: int, wrapped: sa.types.TypeEngine[Any] | None = None
    ) -> None:
        self.length = length
        super().__init__(name, wrapped)

    def base(self) -> sa.types.TypeEngine[Any]:
        return sa.String(self.length)


class TrailingSpace(Sized):
    """MySQL's ``CHAR(n)``: the server strips trailing spaces as it reads one, so a string
    ending in a space is refused."""

    cache_ok = True

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and value.endswith(" "):
            return (
                f"CHAR({self.length}): {value!r} ends in a space, which the server strips as "
                f"the value is read (make it VARCHAR({self.length}))"
            )
        return None


class Padded(Sized):
    """PostgreSQL's ``CHAR(n)``: a shorter string comes back padded with spaces, a longer one
    is refused or (past n, all spaces) trimmed: only a string of exactly n characters is taken."""

    cache_ok = True

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and len(value) != self.length:
            return (
                f"CHAR({self.length}): a string of {len(value)} characters would be padded or "
                f"trimmed to {self.length} (make it VARCHAR({self.length}))"
            )
        return None


class Length(Sized):
    """A ``VARCHAR(n)`` column: a longer string is refused here, with its length, before the
    database refuses the whole statement."""

    cache_ok = True

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and len(value) > self.length:
            return f"VARCHAR({self.length}): a string of {len(value)} characters is too long"
        return None
