"""Partition definitions, in one place: every source is partitioned by calendar month (UTC)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime

import dagster as dg

from pipelines.months import Month, months_between, parse_month, partition_key
from pipelines.universe.instruments import UniverseInstrument


def monthly_partitions(start_month: date) -> dg.MonthlyPartitionsDefinition:
    """Through the running month (``end_offset=1``), which the vendors serve as daily files."""
    return dg.MonthlyPartitionsDefinition(start_date=partition_key(start_month), end_offset=1)


RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def run_months(tags: Mapping[str, str]) -> list[Month] | None:
    """The months a run's tags name (one partition, or a single-run range), else None."""
    if "dagster/partition" in tags:
        return [parse_month(tags["dagster/partition"])]
    if RANGE_START in tags and RANGE_END in tags:
        return months_between(parse_month(tags[RANGE_START]), parse_month(tags[RANGE_END]))
    return None


def selected_instruments(
    instruments: Iterable[UniverseInstrument], keys: Sequence[str], vendor: str
) -> list[UniverseInstrument]:
    """The instruments a run's config asked for (none: all); one the section lacks fails the run first."""
    instruments = list(instruments)
    if unknown := set(keys) - {i.instrument_key for i in instruments}:
        raise dg.Failure(f"instrument(s) not in the {vendor} universe: {sorted(unknown)}")
    return [i for i in instruments if not keys or i.instrument_key in keys]


def refuse_nothing_loaded(vendor: str, rows: int, keys: Sequence[str], months: Sequence[date]) -> None:
    """Fail a run that got no row for a range with a past month: the vendor does not serve what it asked
    for, and the same marts would be published again (the running month may have nothing yet)."""
    now = datetime.now(UTC)
    if rows or not keys or not any(m < date(now.year, now.month, 1) for m in months):
        return
    raise dg.Failure(
        f"{vendor} served no rows for {', '.join(sorted(set(keys)))} in {min(months):%Y-%m}..{max(months):%Y-%m}: "
        "it does not carry them for these months (check venue, symbol and months); the marts were not rebuilt"
    )
