"""Dagster asset for CayøLargo Deribit futures snapshots: one monthly-partitioned raw table.

(No ``from __future__ import annotations``: Dagster reads the config and resource annotations.)
"""

import dagster as dg
from pydantic import Field

from pipelines.partitions import partition_months, source_asset
from pipelines.progress import to_run_log
from pipelines.resources import CayoLargoResource, WarehouseResource
from pipelines.sources.cayolargo.load import load_months, plan_walks
from pipelines.sources.cayolargo.mapping import MappingError
from pipelines.sources.cayolargo.universe import CayoLargoUniverse
from pipelines.universe import Universe


class CayoLargoLoadConfig(dg.Config):
    instruments: list[str] = Field(default_factory=list)  # Atlas keys; empty = every instrument of the coins


def build_cayolargo_assets(
    universe: Universe, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    section = universe.section("cayolargo")
    if not isinstance(section, CayoLargoUniverse):
        return []
    coins = section.coins

    @source_asset(
        "cayolargo_futures",
        group="cayolargo",
        partitions=partitions,
        kinds={"duckdb", "json"},
        description=(
            "CayøLargo Deribit futures and perpetual snapshots (mark, index, last, funding, open "
            "interest) every 10 minutes for the universe's coins, one month per partition."
        ),
    )
    def cayolargo_futures(
        context: dg.AssetExecutionContext,
        config: CayoLargoLoadConfig,
        cayolargo: CayoLargoResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        months = partition_months(context.partition_keys)
        try:
            plan_walks(coins, months, config.instruments)  # fail before any request on a bad key
        except MappingError as exc:
            raise dg.Failure(f"instrument not served by CayøLargo: {exc}") from None
        report = load_months(
            cayolargo.client(),
            warehouse.get(),
            coins,
            months,
            instruments=config.instruments,
            workers=cayolargo.workers,
            progress=to_run_log(context.log.info),
        )
        return dg.MaterializeResult(
            metadata={
                "rows": report.rows,
                "pages": report.pages,
                "transactions": report.transactions,
                "seconds": round(report.seconds, 3),
                "rows_per_month": dg.MetadataValue.json(report.rows_per_month),
                "walks_without_rows": dg.MetadataValue.json(report.skipped),
            }
        )

    return [cayolargo_futures]
