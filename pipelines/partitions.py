"""Partition definitions, in one place: every source is partitioned by calendar month (UTC)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date

import dagster as dg

from pipelines.universe import UniverseInstrument

WAREHOUSE_POOL = "markhouse_warehouse"


def monthly_partitions(start_month: date) -> dg.MonthlyPartitionsDefinition:
    """Months from ``start_month`` through the current one (``end_offset=1`` adds the running month,
    which the vendors serve as daily files)."""
    return dg.MonthlyPartitionsDefinition(start_date=start_month.strftime("%Y-%m-%d"), end_offset=1)


def partition_months(keys: list[str]) -> list[date]:
    """Partition keys (``YYYY-MM-DD``, first of month) as dates."""
    return [date.fromisoformat(k) for k in keys]


def source_asset(
    name: str, *, group: str, partitions: dg.PartitionsDefinition, kinds: set[str], description: str
) -> Callable[..., dg.AssetsDefinition]:
    """The shared policy of every source asset, in one place: a raw table partitioned by month, a
    month range backfilled as one run, and the warehouse's single-writer pool."""
    return dg.asset(
        name=name,
        key_prefix=["raw"],
        group_name=group,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        kinds=kinds,
        description=description,
    )


def selected_instruments(
    instruments: Iterable[UniverseInstrument], keys: Sequence[str], vendor: str
) -> list[UniverseInstrument]:
    """The universe's instruments a run asked for (``keys`` from its run config; none = all); a key
    the vendor's section does not list fails the run before anything is fetched."""
    instruments = list(instruments)
    unknown = set(keys) - {i.key for i in instruments}
    if unknown:
        raise dg.Failure(f"instrument(s) not in the {vendor} universe: {sorted(unknown)}")
    return [i for i in instruments if not keys or i.key in keys]
