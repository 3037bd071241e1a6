"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")

# The largest id each kind of key column holds on both engines (PostgreSQL INTEGER is 32-bit,
# BIGINT and SQLite's INTEGER 64-bit): a bigger number names no row and must not reach a query.
MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in, timezone-aware UTC datetimes out (SQLite drops tz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# A Core row of whatever columns its query selected (readers use attribute access).
AnyRow = Row[*tuple[Any, ...]]

# "No message yet" as conversations store it: the activity column is never NULL, so one
# descending index serves the inbox's order and its row-value cursor (a NULL compares to
# nothing), and this instant, older than any message, keeps such conversations last.
NO_ACTIVITY = datetime(1970, 1, 1, tzinfo=UTC)


class ActivityTime(UTCDateTime):
    """A UTC datetime column that stores None as `NO_ACTIVITY` and reads it back as None, so
    code above the store keeps saying None (and `IS NULL`) for "no message yet"."""

    cache_ok = True

    class Comparator(UTCDateTime.Comparator[datetime]):
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if other and other[0] is None:
                if op in (operators.is_, operators.eq):
                    return super().operate(operators.eq, NO_ACTIVITY, **kwargs)
                if op in (operators.is_not, operators.ne):
                    return super().operate(operators.ne, NO_ACTIVITY, **kwargs)
            return super().operate(op, *other, **kwargs)

    comparator_factory = Comparator

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return super().process_bind_param(NO_ACTIVITY if value is None else value, dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        moment = super().process_result_value(value, dialect)
        return None if moment == NO_ACTIVITY else moment


def no_activity() -> None:
    """The column default of an `ActivityTime`: None, bound as `NO_ACTIVITY` (a default makes
    SQLAlchemy bind the column even when an insert leaves it out)."""
    return None
