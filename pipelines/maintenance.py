"""Warehouse file maintenance as a Dagster asset, job and schedule (also `markhouse maintain`): the
daily refresh leaves old files to time travel, so the data folder would otherwise track reloads."""

from datetime import timedelta
from pathlib import Path

import dagster as dg

from pipelines.resources import WRITES_WAREHOUSE, WarehouseResource
from pipelines.warehouse.maintenance import maintain


@dg.asset(
    key=["maintenance", "warehouse_files"],
    group_name="maintenance",
    kinds={"ducklake"},
    description="Verified, merged data files, expired snapshots and deleted unreferenced files of the warehouse "
    "(a damaged file fails it, naming the file: `markhouse repair`).",
)
def warehouse_files(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.writer(context):  # named for this run; maintain's own writer shares it
        result = maintain(
            warehouse.get(), Path(warehouse.serving_path), timedelta(hours=warehouse.retention_hours)
        )
    context.log.info(
        f"maintenance: merged={result.merged}, {result.expired} snapshots expired, {result.deleted_files} files "
        f"deleted, {result.bytes_before:,} -> {result.bytes_after:,} bytes in {result.seconds:.1f}s"
    )
    metadata: dict[str, dg.RawMetadataValue] = {
        "files_verified": result.verified,
        "merged": result.merged,
        "snapshots_expired": result.expired,
        "files_deleted": result.deleted_files,
        "data_bytes_before": result.bytes_before,
        "data_bytes_after": result.bytes_after,
    }
    if result.republished is not None:
        metadata["published_snapshot"] = result.republished.snapshot
    return dg.MaterializeResult(metadata=metadata)


maintenance_job = dg.define_asset_job(
    "maintenance",
    selection=dg.AssetSelection.groups("maintenance"),
    description="Verify the files, merge small ones, expire old snapshots, delete unreferenced files.",
    tags=WRITES_WAREHOUSE,
)

# after the daily refresh (02:15 UTC) has published
nightly_maintenance = dg.ScheduleDefinition(
    name="nightly_maintenance", job=maintenance_job, cron_schedule="45 3 * * *", execution_timezone="UTC"
)
