"""Calendar-month arithmetic, once (every source is partitioned by UTC month)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TypeVar

D = TypeVar("D", date, datetime)


def next_month(d: D) -> D:
    """The same day-of-month one month on (callers pass the 1st): date or datetime alike."""
    return d.replace(year=d.year + (d.month == 12), month=d.month % 12 + 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) in UTC."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    return start, next_month(start)
