"""Column types that behave the same on SQLite and PostgreSQL.

* `Money` / `Quantity`: `Decimal` in, `Decimal` out, exactly. PostgreSQL stores NUMERIC(p, s);
  SQLite has no decimal type (its NUMERIC affinity goes through a float), so there the value is
  stored as its canonical text, quantized to the column's scale like NUMERIC does.
* `UTCDateTime`: aware datetimes only; stored as UTC and always read back aware in UTC.
* `JSONType`: JSON, JSONB on PostgreSQL.
* `StrEnumType`: a `StrEnum` stored as its value in a VARCHAR (the CHECK constraint is declared
  on the table, so migrations control its name and its values explicitly).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "IdType",
    "JSONType",
    "Money",
    "Quantity",
    "StrEnumType",
    "UTCDateTime",
    "utcnow",
]

E = TypeVar("E", bound=StrEnum)

# BIGINT on PostgreSQL; SQLite only auto-increments an "INTEGER PRIMARY KEY".
IdType = BigInteger().with_variant(Integer(), "sqlite")
JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class _ExactDecimal(TypeDecorator[Decimal]):
    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # sign + integer digits + point + fraction digits
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(
            Numeric(precision=self.precision, scale=self.scale, asdecimal=True)
        )

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"expected Decimal, got {type(value).__name__}")
        if not value.is_finite():
            raise ValueError(f"not a finite decimal: {value}")
        too_big = ValueError(f"{value} does not fit NUMERIC({self.precision}, {self.scale})")
        if value and value.adjusted() >= self.precision - self.scale:
            raise too_big
        # One spare digit of precision: rounding 99…9.999999995 up must not raise in quantize.
        context = Context(prec=self.precision + 1, rounding=ROUND_HALF_UP)
        quantized = value.quantize(self._quantum, context=context)
        if len(quantized.as_tuple().digits) > self.precision:
            raise too_big
        if dialect.name == "sqlite":
            return format(quantized, "f")
        return quantized

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value) if not isinstance(value, Decimal) else value

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


class Quantity(_ExactDecimal):
    """DECIMAL(20, 8): share quantities."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(20, 8)


class Money(_ExactDecimal):
    """DECIMAL(24, 8): amounts of money (prices, values, costs)."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(24, 8)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both backends; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime refused (store aware UTC times): {value!r}")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite's DATETIME text has no offset; every stored value is UTC by construction.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


class StrEnumType(TypeDecorator[E], Generic[E]):
    """A `StrEnum` member stored as its value; plain strings are validated on the way in."""

    impl = String
    cache_ok = True

    def __init__(self, enum_cls: type[E], length: int = 16) -> None:
        super().__init__(length)
        self.enum_cls = enum_cls

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.enum_cls(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        if value is None:
            return None
        return self.enum_cls(value)
