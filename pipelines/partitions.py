"""Partition definitions, in one place: every source is partitioned by calendar month (UTC)."""

from __future__ import annotations

from datetime import date

import dagster as dg

WAREHOUSE_POOL = "markhouse_warehouse"


def monthly_partitions(start_month: date) -> dg.MonthlyPartitionsDefinition:
    """Months from ``start_month`` through the current one (``end_offset=1`` adds the running month,
    which the vendors serve as daily files)."""
    return dg.MonthlyPartitionsDefinition(start_date=start_month.strftime("%Y-%m-%d"), end_offset=1)


def partition_months(keys: list[str]) -> list[date]:
    """Partition keys (``YYYY-MM-DD``, first of month) as dates."""
    return [date.fromisoformat(k) for k in keys]
