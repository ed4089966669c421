"""The Dagster code location: loads the vendor folders and applies shared policy, nothing else."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import dagster as dg

from pipelines.checks import build_mart_checks
from pipelines.maintenance import maintenance_job, nightly_maintenance, warehouse_files
from pipelines.marts import build_mart_assets, build_report_asset
from pipelines.months import partition_key
from pipelines.partitions import monthly_partitions
from pipelines.resources import WRITES_WAREHOUSE, WarehouseResource
from pipelines.settings import Settings
from pipelines.sources import sources
from pipelines.sources.assets import build_source_assets
from pipelines.status import judgement_time
from pipelines.universe import load_universe

# BackfillPolicy is marked beta in Dagster 1.13; it is what makes a month range one run.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

settings = Settings.from_env()
universe = load_universe(settings.universe_path)
partitions = monthly_partitions(universe.start_month)

source_assets = [a for source in sources() for a in build_source_assets(source, universe, partitions)]
# Dagster's own freshness on what vendors deliver and what people read: the daemon marks an asset
# stale (UI, alerts) once its last materialization is older than the bound
fresh = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=settings.max_age_hours))
assets = dg.map_asset_specs(
    lambda spec: (
        spec.replace_attributes(freshness_policy=fresh) if spec.key.path[0] in ("raw", "marts") else spec
    ),
    [*source_assets, *build_mart_assets([a.key for a in source_assets])],
)

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("maintenance"),
    description="Load every source, rebuild the marts and draw the report for a month range (one run per range).",
    tags=WRITES_WAREHOUSE,
)


@dg.schedule(job=refresh_job, cron_schedule="15 2 * * *", execution_timezone="UTC")
def daily_current_month(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Refresh the running month every day: vendors publish it as daily files."""
    now = context.scheduled_execution_time or datetime.now(UTC)
    return dg.RunRequest(
        run_key=f"current-month-{now:%Y-%m-%d}", partition_key=partition_key(now.date().replace(day=1))
    )


defs = dg.Definitions(
    assets=[*assets, build_report_asset(), warehouse_files],
    asset_checks=build_mart_checks(settings.max_age_hours, settings.divergence_bps, judgement_time),
    jobs=[refresh_job, maintenance_job],
    schedules=[daily_current_month, nightly_maintenance],
    resources={
        "warehouse": WarehouseResource(
            path=str(settings.warehouse_path),
            serving_path=str(settings.serving_path),
            mark_last_gap_bps=settings.mark_last_gap_bps,
            retention_hours=settings.retention_hours,
        ),
        **{source.name: source.resource() for source in sources()},
    },
)
