"""The month, one type from the command line to the SQL: a ``date`` on the 1st of a UTC calendar month
(a DATE in SQL); only Dagster's partition keys are strings, converted here."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TypeVar

D = TypeVar("D", date, datetime)

Month = date  # the first day of a UTC calendar month


def parse_month(text: str) -> Month:
    """``YYYY-MM`` (the command line) or a partition key ``YYYY-MM-01``; ValueError otherwise."""
    year, month, *day = text.split("-")
    # a 20-digit year or month would overflow date() (OverflowError, not ValueError)
    if day not in ([], ["01"]) or len(year) != 4 or not 1 <= len(month) <= 2:
        raise ValueError(f"not a month: {text!r}")
    return date(int(year), int(month), 1)


def partition_key(month: Month) -> str:
    return f"{month:%Y-%m-%d}"


def months_between(first: Month, last: Month) -> list[Month]:  # inclusive
    out = [first]
    while out[-1] < last:
        out.append(next_month(out[-1]))
    return out


def next_month(d: D) -> D:
    """The same day-of-month one month on (callers pass the 1st): date or datetime alike."""
    return d.replace(year=d.year + (d.month == 12), month=d.month % 12 + 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) in UTC."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    return start, next_month(start)
