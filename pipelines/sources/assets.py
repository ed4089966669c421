"""A source's raw assets from its ``SOURCE``. No ``from __future__ import annotations``: Dagster
reads the config annotation."""

from typing import Any

import dagster as dg
from pydantic import Field

from pipelines.months import parse_month
from pipelines.partitions import refuse_nothing_loaded
from pipelines.progress import to_run_log
from pipelines.reference import Reference
from pipelines.sources.source import VENDOR_TAG, LoadRequest, RawAsset, Source
from pipelines.universe import Universe


class SourceLoadConfig(dg.Config):
    instruments: list[str] = Field(default_factory=list)  # Atlas keys; empty = all the section lists


def build_source_assets(
    source: Source, universe: Universe, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    section = universe.section(source.name)
    if section is None:
        return []
    return [_raw_asset(source, section, raw, partitions) for raw in source.raw_assets(section)]


def _raw_asset(
    source: Source, section: Any, raw: RawAsset, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    # every source asset: a raw table partitioned by month, a month range backfilled as one run
    @dg.asset(
        name=f"{source.name}_{raw.table}",
        key_prefix=["raw"],
        group_name=source.name,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds=set(raw.kinds),
        description=raw.description,
        tags={VENDOR_TAG: source.name},
        required_resource_keys={source.name, "warehouse"},
    )
    def raw_asset(context: dg.AssetExecutionContext, config: SourceLoadConfig) -> dg.MaterializeResult:
        months = [parse_month(k) for k in context.partition_keys]
        warehouse = context.resources.warehouse.get()
        with context.resources.warehouse.writer(context):  # the step's hold, named for its run
            loaded = source.load(
                LoadRequest(
                    section,
                    raw.table,
                    config.instruments,
                    months,
                    getattr(context.resources, source.name),
                    warehouse,
                    to_run_log(context.log.info),
                    # what the universe says of its instruments; each batch writes it with its rows
                    # (CayøLargo's come from its data instead: pipelines/reference.py)
                    Reference(source.instruments(section), source.vendor_names(section)),
                )
            )
        if loaded.must_have_rows:
            refuse_nothing_loaded(source.name, loaded.rows, loaded.keys, months)
        return dg.MaterializeResult(
            metadata={
                k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v
                for k, v in loaded.metadata.items()
            }
        )

    return raw_asset
