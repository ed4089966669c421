"""Dagster assets for the BI-facing marts, rebuilt from ``sql/`` for the months a run touched."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from pipelines.models import mart_catalog, refresh_marts
from pipelines.partitions import WAREHOUSE_POOL, partition_months
from pipelines.progress import to_run_log
from pipelines.resources import WarehouseResource
from pipelines.storage import publish_serving

MARTS = (
    "fct_price_interval",
    "fct_carry",
    "rpt_coverage",
    "rpt_vendor_divergence",
    "rpt_mark_last_gap",
    "rpt_term_structure",
    "dim_instrument",
    "map_vendor_instrument",
)


def build_mart_assets(
    partitions: dg.PartitionsDefinition, upstream: list[dg.AssetKey]
) -> list[dg.AssetsDefinition]:
    catalog = mart_catalog()

    @dg.multi_asset(
        name="marts",
        group_name="marts",
        specs=[
            dg.AssetSpec(
                ["marts", name],
                deps=upstream,
                partitions_def=partitions,
                kinds={"duckdb", "sql"},
                description=catalog[name][0],
                metadata={
                    "dagster/column_schema": dg.TableSchema(
                        columns=[
                            dg.TableColumn(c.name, c.type.lower(), description=c.description)
                            for c in catalog[name][1]
                        ]
                    ),
                    "dagster/table_name": f"marts.{name}",
                },
            )
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
            emit = to_run_log(context.log.info)
            result = refresh_marts(
                con, months, {"mark_last_gap_threshold_bps": warehouse.mark_last_gap_bps}, progress=emit
            )
            emit(f"marts: publishing the serving copy {warehouse.serving_path}")
            published = publish_serving(con, Path(warehouse.serving_path))
        emit(
            f"marts: {result.rows:,} rows rebuilt for {len(months)} months in {result.seconds:.2f}s; "
            f"serving copy {published.path} published in {published.seconds:.2f}s"
        )
        for name in MARTS:
            metadata: dict[str, dg.RawMetadataValue] = {"rows": published.tables.get(f"marts.{name}", 0)}
            if name == "fct_price_interval":
                metadata.update(
                    rows_rebuilt=result.rows, windows=result.windows, seconds=round(result.seconds, 3)
                )
            yield dg.MaterializeResult(asset_key=["marts", name], metadata=metadata)

    return [marts]
