"""Dagster asset for Aperiodic ``derivative_price``: one monthly-partitioned raw table.

(No ``from __future__ import annotations``: Dagster reads the config and resource annotations.)
"""

import dagster as dg
from pydantic import Field

from pipelines.partitions import partition_months, refuse_nothing_loaded, selected_instruments, source_asset
from pipelines.progress import to_run_log
from pipelines.reference import VendorName, commit_reference
from pipelines.resources import AperiodicResource, WarehouseResource
from pipelines.sources.aperiodic.load import PRICE_METRIC, Series, load_months
from pipelines.universe import Universe


class AperiodicLoadConfig(dg.Config):
    instruments: list[str] = Field(default_factory=list)  # Atlas keys; empty = all in the universe


def vendor_names(universe: Universe) -> list[VendorName]:
    """Aperiodic names venues and instruments as markhouse does (its exchanges and Atlas keys)."""
    if universe.aperiodic is None:
        return []
    return [
        VendorName("aperiodic", i.venue, i.instrument.kind, i.key, i.venue, i.key)
        for i in universe.aperiodic.instruments
    ]


DESCRIPTIONS = {
    "derivative_price": "Aperiodic derivative_price files (mark, index, last) for the universe, one month per partition.",
    "funding": "Aperiodic funding files (the rate settled in each interval with a settlement) for the universe's perpetuals, one month per partition.",
    "open_interest": "Aperiodic open_interest files (last open interest of each interval, base units) for the universe's perpetuals, one month per partition.",
}


def build_aperiodic_assets(
    universe: Universe, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """One raw asset per metric the universe's section asks for (default: all three)."""
    if universe.aperiodic is None:
        return []
    return [_metric_asset(universe, metric, partitions) for metric in universe.aperiodic.metrics]


def _metric_asset(
    universe: Universe, metric: str, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    assert universe.aperiodic is not None
    section = universe.aperiodic
    # funding and open interest exist for perpetuals only
    perpetual_only = metric != "derivative_price"

    @source_asset(
        f"aperiodic_{metric}",
        group="aperiodic",
        partitions=partitions,
        kinds={"duckdb", "parquet"},
        description=DESCRIPTIONS[metric],
    )
    def aperiodic_metric(
        context: dg.AssetExecutionContext,
        config: AperiodicLoadConfig,
        aperiodic: AperiodicResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        series = [
            Series(i.venue, i.key, interval, ts_type)
            for i in selected_instruments(section.instruments, config.instruments, "Aperiodic")
            if not perpetual_only or i.instrument.kind == "perpetual"
            for interval in section.intervals
            for ts_type in section.timestamp_types
        ]
        months = partition_months(context.partition_keys)
        wh = warehouse.get()
        with wh.writer(shared=True) as con:
            commit_reference(con, section.instruments, vendor_names(universe))
        report = load_months(
            aperiodic.client(),
            wh,
            series,
            months,
            workers=aperiodic.workers,
            progress=to_run_log(context.log.info),
            metric=metric,
        )
        if metric == PRICE_METRIC:  # funding and open interest may legitimately start later
            refuse_nothing_loaded("aperiodic", report.rows, [s.symbol for s in series], months)
        return dg.MaterializeResult(
            metadata={
                "rows": report.rows,
                "files": report.files,
                "bytes": report.bytes,
                "transactions": report.transactions,
                "seconds": round(report.seconds, 3),
                "rows_per_month": dg.MetadataValue.json(report.rows_per_month),
                "months_without_files": dg.MetadataValue.json(report.skipped),
            }
        )

    return aperiodic_metric
