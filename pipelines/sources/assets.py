"""A source's raw assets (no ``from __future__ import annotations``: Dagster reads the config's). A
failed unit fails the asset's check, not its step, so the marts still publish what loaded; the marts
step then fails the run, naming every failed unit."""

import traceback
from collections.abc import Iterable
from typing import Any

import dagster as dg
from pydantic import Field

from pipelines.errors import diagnose
from pipelines.months import parse_month
from pipelines.partitions import refuse_nothing_loaded
from pipelines.progress import to_run_log
from pipelines.redaction import redact
from pipelines.reference import Reference
from pipelines.sources.loader import Failed
from pipelines.sources.source import VENDOR_TAG, Loaded, LoadRequest, RawAsset, Source
from pipelines.universe import Universe

FAILED_UNITS, CHECK = "failed_units", "every_unit_loaded"


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
    key = dg.AssetKey(["raw", f"{source.name}_{raw.table}"])

    # every source asset: a raw table partitioned by month, a month range backfilled as one run
    @dg.asset(
        key=key,
        group_name=source.name,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds=set(raw.kinds),
        description=raw.description,
        tags={VENDOR_TAG: source.name},
        required_resource_keys={source.name, "warehouse"},
        check_specs=[
            dg.AssetCheckSpec(
                CHECK,
                asset=key,
                description="Every unit the run asked for (a series-month, an instrument-month, a coin-month) "
                "loaded; a failure names each unit and its cause, and what loaded is still published.",
            )
        ],
    )
    def raw_asset(context: dg.AssetExecutionContext, config: SourceLoadConfig) -> dg.MaterializeResult:
        months = [parse_month(k) for k in context.partition_keys]
        warehouse, resource = context.resources.warehouse, getattr(context.resources, source.name)
        # what the universe says of its instruments, written with each batch (CayøLargo's: from its data)
        reference = Reference(source.instruments(section), source.vendor_names(section))
        log = to_run_log(context.log.info)
        request = LoadRequest(
            section, raw.table, config.instruments, months, resource, warehouse.get(), log, reference
        )
        with warehouse.writer(context):  # the step's hold, named for its run
            try:
                loaded = source.load(request)
                failed = list(loaded.failed)
            except Exception as exc:
                if not diagnose(exc).from_vendor:  # a request refused, the warehouse, a bug: the run stops
                    raise
                # every unit failed (a key, the host, a symbol it does not serve): the vendor failed
                what = f"{source.name} {raw.table} {months[0]:%Y-%m}..{months[-1]:%Y-%m} (every unit)"
                loaded, failed = Loaded(0, {"rows": 0}), [Failed(what, config.instruments, months, exc)]
        if loaded.must_have_rows and not failed:
            refuse_nothing_loaded(source.name, loaded.rows, loaded.keys, months)
        for f in failed:  # each stack in the run's log (``markhouse backfill --debug`` shows it)
            context.log.warning(redact("".join(traceback.format_exception(f.error))))
        records = [_record(source, raw.table, f) for f in failed]
        return dg.MaterializeResult(
            metadata={
                k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v
                for k, v in {**loaded.metadata, FAILED_UNITS: records}.items()
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=CHECK,
                    passed=not records,
                    description=f"failed: {describe(records)}" if records else None,
                    metadata={FAILED_UNITS: dg.MetadataValue.json(records)},
                )
            ],
        )

    return raw_asset


def _record(source: Source, table: str, failed: Failed) -> dict[str, Any]:
    """What to retry (instruments, none: every one asked for) and why, as ``markhouse`` prints it."""
    diagnosis = diagnose(failed.error)
    return {
        "vendor": source.name,
        "table": table,
        "unit": failed.label,
        "instruments": list(failed.instruments),
        "months": [f"{m:%Y-%m}" for m in failed.months],
        "code": int(diagnosis.code),
        "cause": redact(diagnosis.message),
        "hint": diagnosis.hint,
    }


def unit_line(failed: dict[str, Any]) -> str:
    """``unit: cause``, the unit named once (a cause often starts with it)."""
    return f"{failed['unit']}: {failed['cause'].removeprefix(failed['unit'] + ': ')}"


def describe(failed: Iterable[dict[str, Any]]) -> str:
    return "; ".join(map(unit_line, failed))


def run_outcome(materializations: Iterable[dg.AssetMaterialization]) -> tuple[list[dict[str, Any]], int]:
    """Failed units and rows loaded, read once per asset (a range run has one per month, alike)."""
    once: dict[Any, Any] = {m.asset_key: m.metadata for m in materializations if FAILED_UNITS in m.metadata}
    failed = [f for metadata in once.values() for f in metadata[FAILED_UNITS].value]
    return failed, sum(int(metadata["rows"].value) for metadata in once.values())
