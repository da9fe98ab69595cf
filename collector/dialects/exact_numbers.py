"""``--models``: the guards of number columns (see collector.dialects.exact): a decimal's
scale and precision, a 4-byte float, an integer's range."""

from __future__ import annotations

import decimal
import math
import struct
from typing import Any

import sqlalchemy as sa

from collector.dialects.exact import Guard


def as_decimal(value: Any) -> decimal.Decimal:
    """A number as the decimal it reads as: a float by its shortest repr (what was sent)."""
    return decimal.Decimal(repr(value) if isinstance(value, float) else value)


class Digits(Guard):
    """A ``DECIMAL(p, s)``/``NUMERIC(p, s)`` column: a number with more than s decimal places
    (rounded by the database) or more than p - s digits before the point is refused; a float
    goes as its exact decimal (PostgreSQL casts a float parameter to 15 digits)."""

    cache_ok = True

    def __init__(
        self,
        name: str,
        kind: str,
        precision: int | None,
        scale: int | None,
        wrapped: sa.types.TypeEngine[Any] | None = None,
    ) -> None:
        self.kind, self.precision, self.scale = kind, precision, scale
        super().__init__(name, wrapped)

    def base(self) -> sa.types.TypeEngine[Any]:
        return sa.Numeric(self.precision, self.scale)

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str):  # a user's type may give text: the server casts it
            try:
                number = decimal.Decimal(value)
            except decimal.InvalidOperation:
                return None  # not a number: the database refuses it
        elif isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            return None  # not a number: the driver or the database refuses it
        else:
            number = as_decimal(value)
        column = (
            self.kind if self.precision is None else f"{self.kind}({self.precision}, {self.scale})"
        )
        if not number.is_finite():
            return f"{column}: {value!r} is not a finite number"
        if number.is_zero() and number.is_signed():
            return f"{column}: {value!r} would be stored as 0 (a NUMERIC has no negative zero)"
        if number.is_zero() or self.precision is None or self.scale is None:
            return None
        _sign, digits, exponent = number.normalize().as_tuple()
        assert isinstance(exponent, int)  # finite
        if -exponent > self.scale:
            return f"{column}: {value!r} has more than {self.scale} decimal places"
        if len(digits) + exponent > self.precision - self.scale:
            return (
                f"{column}: {value!r} has more than {self.precision - self.scale} digits "
                "before the point"
            )
        return None

    def bind(self, value: Any) -> Any:
        return as_decimal(value) if isinstance(value, float) else value


class ReadAsDecimal(Digits):
    """SQLite's ``NUMERIC``: the value is kept as sent, but SQLAlchemy reads it back through a
    float rounded to the scale (10 places without one): a number that read would not give back
    is refused too. Bound as it is (SQLite has no decimal type)."""

    cache_ok = True

    def problem(self, value: Any) -> str | None:
        found = super().problem(value)
        if found is not None or isinstance(value, bool) or not isinstance(value, int | float):
            return found
        places = 10 if self.scale is None else self.scale
        if decimal.Decimal(f"{float(value):.{places}f}") != as_decimal(value):
            column = (
                self.kind if self.precision is None else f"{self.kind}({self.precision}, {places})"
            )
            return f"{column}: {value!r} would be read back as another number"
        return None

    def bind(self, value: Any) -> Any:
        return value


class SinglePrecision(Guard):
    """A 4-byte float column: only a number it stores and prints back as sent is taken (one a
    float32 holds exactly, printed in at most 6 significant digits by MySQL, in the shortest
    digits that name the float32 by PostgreSQL)."""

    cache_ok = True

    def __init__(
        self,
        name: str,
        kind: str,
        advice: str,
        shortest: bool,
        wrapped: sa.types.TypeEngine[Any] | None = None,
    ) -> None:
        self.kind, self.advice, self.shortest = kind, advice, shortest
        super().__init__(name, wrapped)

    def base(self) -> sa.types.TypeEngine[Any]:
        return sa.Float()

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        as_float = float(value)
        if self.shortest and not math.isfinite(as_float):
            return None  # PostgreSQL's REAL keeps NaN and the infinities
        single = struct.unpack("f", struct.pack("f", as_float))[0] if abs(as_float) < 3e38 else 0
        if not (as_float == value == single == self.printed(single)):
            return (
                f"{self.kind} (single precision): {value!r} would come back as another "
                f"number (make it {self.advice})"
            )
        return None

    def printed(self, single: float) -> float:
        """The float32 ``single`` as the server prints it, read as a float."""
        if not self.shortest:
            return float(f"{single:.6g}")
        if single == 0:
            return single
        bits = struct.unpack("I", struct.pack("f", single))[0]
        near = [struct.unpack("f", struct.pack("I", b))[0] for b in (bits - 1, bits + 1)]
        with decimal.localcontext(prec=300):  # exact: PostgreSQL prints digits strictly
            low, high = sorted((decimal.Decimal(n) + decimal.Decimal(single)) / 2 for n in near)
            for digits in range(1, 10):  # inside the float32's interval, never on a tie
                text = f"{single:.{digits}g}"
                if low < decimal.Decimal(text) < high:
                    return float(text)
        return single  # nine digits always name a float32


class IntRange(Guard):
    """An integer column: an int outside its range is refused with the range, a float that is
    not a whole number (a user's type may give one; the server would round it) too."""

    cache_ok = True

    def __init__(
        self, name: str, kind: str, bits: int, wrapped: sa.types.TypeEngine[Any] | None = None
    ) -> None:
        self.kind, self.bits = kind, bits
        self.low, self.high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        super().__init__(name, wrapped)

    def base(self) -> sa.types.TypeEngine[Any]:
        return sa.BigInteger() if self.bits > 32 else sa.Integer()  # the cast of its parameter

    def problem(self, value: Any) -> str | None:
        if type(value) is float and not value.is_integer():
            return f"{self.kind}: {value!r} is not a whole number (the server would round it)"
        if type(value) in (int, float) and not self.low <= value <= self.high:
            return f"{self.kind}: {value} is outside {self.low}..{self.high}"
        return None
