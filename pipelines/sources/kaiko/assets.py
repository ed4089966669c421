"""Dagster asset for Kaiko ``derivatives.v2/price``: one monthly-partitioned raw table.

(No ``from __future__ import annotations``: Dagster reads the config and resource annotations.)
"""

import dagster as dg
from pydantic import Field

from pipelines.partitions import partition_months, refuse_nothing_loaded, selected_instruments, source_asset
from pipelines.progress import to_run_log
from pipelines.reference import VendorName, commit_reference
from pipelines.resources import KaikoResource, WarehouseResource
from pipelines.sources.kaiko.load import Series, load_months
from pipelines.sources.kaiko.universe import KaikoUniverse
from pipelines.universe import Universe


class KaikoLoadConfig(dg.Config):
    instruments: list[str] = Field(default_factory=list)  # Atlas keys; empty = all in the universe


def vendor_names(section: KaikoUniverse) -> list[VendorName]:
    """Kaiko's (exchange, class, code) for each instrument, from the one mapping."""
    return [
        VendorName("kaiko", c.exchange, c.instrument_class, c.instrument, i.venue, i.key)
        for i in section.instruments
        for c in (section.code(i),)
    ]


def build_kaiko_assets(universe: Universe, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    section: KaikoUniverse | None = universe.section("kaiko")
    if section is None:
        return []

    @source_asset(
        "kaiko_derivative_price",
        group="kaiko",
        partitions=partitions,
        kinds={"duckdb", "json"},
        description="Kaiko derivatives.v2/price (mark, index, last) for the universe, one month per partition.",
    )
    def kaiko_derivative_price(
        context: dg.AssetExecutionContext,
        config: KaikoLoadConfig,
        kaiko: KaikoResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        series = [
            Series(i.venue, i.key, section.code(i), interval)
            for i in selected_instruments(section.instruments, config.instruments, "Kaiko")
            for interval in section.intervals
        ]
        months = partition_months(context.partition_keys)
        wh = warehouse.get()
        with wh.writer(shared=True) as con:
            commit_reference(con, section.instruments, vendor_names(section))
        report = load_months(
            kaiko.client(), wh, series, months, workers=kaiko.workers, progress=to_run_log(context.log.info)
        )
        refuse_nothing_loaded("kaiko", report.rows, [s.instrument_key for s in series], months)
        return dg.MaterializeResult(
            metadata={
                "rows": report.rows,
                "pages": report.pages,
                "bytes": report.bytes,
                "duplicates_dropped": report.duplicates,
                "transactions": report.transactions,
                "seconds": round(report.seconds, 3),
                "rows_per_month": dg.MetadataValue.json(report.rows_per_month),
                "months_without_rows": dg.MetadataValue.json(report.empty),
            }
        )

    return [kaiko_derivative_price]
