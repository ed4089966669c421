"""Dagster asset for Aperiodic ``derivative_price``: one monthly-partitioned raw table.

(No ``from __future__ import annotations``: Dagster reads the config and resource annotations.)
"""

import dagster as dg
from pydantic import Field

from pipelines.partitions import partition_months, selected_instruments, source_asset
from pipelines.progress import to_run_log
from pipelines.reference import VendorName, upsert_reference
from pipelines.resources import AperiodicResource, WarehouseResource
from pipelines.sources.aperiodic.load import Series, load_months
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


def build_aperiodic_assets(
    universe: Universe, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    if universe.aperiodic is None:
        return []
    section = universe.aperiodic

    @source_asset(
        "aperiodic_derivative_price",
        group="aperiodic",
        partitions=partitions,
        kinds={"duckdb", "parquet"},
        description="Aperiodic derivative_price files (mark, index, last) for the universe, one month per partition.",
    )
    def aperiodic_derivative_price(
        context: dg.AssetExecutionContext,
        config: AperiodicLoadConfig,
        aperiodic: AperiodicResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        series = [
            Series(i.venue, i.key, interval, ts_type)
            for i in selected_instruments(section.instruments, config.instruments, "Aperiodic")
            for interval in section.intervals
            for ts_type in section.timestamp_types
        ]
        months = partition_months(context.partition_keys)
        wh = warehouse.get()
        with wh.writer() as con:
            upsert_reference(con, section.instruments, vendor_names(universe))
        report = load_months(
            aperiodic.client(),
            wh,
            series,
            months,
            workers=aperiodic.workers,
            progress=to_run_log(context.log.info),
        )
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

    return [aperiodic_derivative_price]
