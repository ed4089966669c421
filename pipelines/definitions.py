"""The Dagster code location: loads the vendor folders and applies shared policy, nothing else."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import dagster as dg

from pipelines.checks import build_mart_checks
from pipelines.maintenance import maintenance_job, nightly_maintenance, warehouse_files
from pipelines.marts import build_mart_assets
from pipelines.partitions import monthly_partitions
from pipelines.resources import (
    AperiodicResource,
    CayoLargoResource,
    KaikoResource,
    WarehouseResource,
    env_or_none,
    judgement_time,
)
from pipelines.settings import Settings
from pipelines.sources.aperiodic.assets import build_aperiodic_assets
from pipelines.sources.cayolargo.assets import build_cayolargo_assets
from pipelines.sources.kaiko.assets import build_kaiko_assets
from pipelines.universe import load_universe

# BackfillPolicy is marked beta in Dagster 1.13; it is what makes a month range one run.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

settings = Settings.from_env()
universe = load_universe(settings.universe_path)
partitions = monthly_partitions(universe.start_month)

source_assets = [*build_aperiodic_assets(universe, partitions), *build_kaiko_assets(universe, partitions)]
source_assets += build_cayolargo_assets(universe, partitions)
mart_assets = build_mart_assets(partitions, [a.key for a in source_assets])

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("maintenance"),
    description="Load every source and rebuild the marts for a month range (one run per range).",
)


@dg.schedule(job=refresh_job, cron_schedule="15 2 * * *", execution_timezone="UTC")
def daily_current_month(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Refresh the running month every day: vendors publish it as daily files."""
    now = context.scheduled_execution_time or datetime.now(UTC)
    key = now.strftime("%Y-%m-01")
    return dg.RunRequest(run_key=f"current-month-{now:%Y-%m-%d}", partition_key=key)


mart_checks = build_mart_checks(settings.max_age_hours, settings.divergence_bps, judgement_time)

defs = dg.Definitions(
    assets=[*source_assets, *mart_assets, warehouse_files],
    asset_checks=mart_checks,
    jobs=[refresh_job, maintenance_job],
    schedules=[daily_current_month, nightly_maintenance],
    resources={
        "warehouse": WarehouseResource(
            path=str(settings.warehouse_path),
            serving_path=str(settings.serving_path),
            mark_last_gap_bps=settings.mark_last_gap_bps,
            retention_hours=settings.retention_hours,
        ),
        "aperiodic": AperiodicResource(
            base_url=env_or_none("APERIODIC_BASE_URL"), api_key=env_or_none("APERIODIC_API_KEY")
        ),
        "kaiko": KaikoResource(base_url=env_or_none("KAIKO_BASE_URL"), api_key=env_or_none("KAIKO_API_KEY")),
        "cayolargo": CayoLargoResource(
            base_url=env_or_none("CAYOLARGO_BASE_URL"),
            api_key=env_or_none("CAYOLARGO_API_KEY"),
            auth_header=env_or_none("CAYOLARGO_AUTH_HEADER"),
            envelope=env_or_none("CAYOLARGO_ENVELOPE"),
        ),
    },
)
