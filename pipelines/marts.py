"""Dagster assets for the BI-facing marts, rebuilt from ``sql/`` for the months a run touched."""

from collections.abc import Iterator

import dagster as dg

from pipelines.models import refresh_marts
from pipelines.partitions import WAREHOUSE_POOL, partition_months
from pipelines.resources import WarehouseResource

MARTS = ("fct_price_interval", "fct_carry", "rpt_coverage", "dim_instrument", "map_vendor_instrument")


def build_mart_assets(
    partitions: dg.PartitionsDefinition, upstream: list[dg.AssetKey]
) -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        name="marts",
        group_name="marts",
        specs=[
            dg.AssetSpec(["marts", name], deps=upstream, partitions_def=partitions, kinds={"duckdb", "sql"})
            for name in MARTS
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def marts(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult]:
        months = partition_months(context.partition_keys)
        with warehouse.get().writer() as con:
            result = refresh_marts(con, months)
        context.log.info(
            f"marts: {result.rows:,} rows of fct_price_interval rebuilt for {len(months)} months "
            f"in {result.seconds:.2f}s"
        )
        for name in MARTS:
            yield dg.MaterializeResult(
                asset_key=["marts", name],
                metadata={
                    "rows_rebuilt": result.rows,
                    "windows": result.windows,
                    "seconds": round(result.seconds, 3),
                }
                if name == "fct_price_interval"
                else {},
            )

    return [marts]
