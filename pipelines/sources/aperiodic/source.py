"""Aperiodic as a source: one raw asset per metric the universe asks for (default all three).

Light at import (the registry is read by the CLI): the client and loader load inside ``load``.
"""

from __future__ import annotations

from typing import Any

from pipelines.sources.aperiodic.mapping import vendor_names
from pipelines.sources.aperiodic.universe import PRICE_METRIC, AperiodicUniverse, parse_section
from pipelines.sources.source import Loaded, LoadRequest, RawAsset, Source, lazy

DESCRIPTIONS = {
    "derivative_price": "Aperiodic derivative_price files (mark, index, last) for the universe, one month per partition.",
    "funding": "Aperiodic funding files (the rate settled in each interval with a settlement) for the universe's perpetuals, one month per partition.",
    "open_interest": "Aperiodic open_interest files (last open interest of each interval, base units) for the universe's perpetuals, one month per partition.",
}


def raw_assets(section: AperiodicUniverse) -> list[RawAsset]:
    return [RawAsset(m, DESCRIPTIONS[m], frozenset({"duckdb", "parquet"})) for m in section.metrics]


def load(request: LoadRequest) -> Loaded:
    from pipelines.partitions import selected_instruments
    from pipelines.sources.aperiodic.load import Series, load_months

    section, metric = request.section, request.table
    perpetual_only = metric != PRICE_METRIC  # funding and open interest exist for perpetuals only
    series = [
        Series(i.venue, i.instrument_key, interval, ts_type)
        for i in selected_instruments(section.instruments, request.instruments, "Aperiodic")
        if not perpetual_only or i.instrument.kind == "perpetual"
        for interval in section.intervals
        for ts_type in section.timestamp_types
    ]
    report = load_months(
        request.resource.client(),
        request.warehouse,
        series,
        request.months,
        workers=request.resource.workers,
        progress=request.progress,
        metric=metric,
        reference=request.reference,
    )
    import dagster as dg

    metadata: dict[str, Any] = {
        "rows": report.rows,
        "files": report.files,
        "bytes": report.bytes,
        "transactions": report.transactions,
        "seconds": round(report.seconds, 3),
        "rows_per_month": dg.MetadataValue.json(report.rows_per_month),
        "months_without_files": dg.MetadataValue.json(report.skipped),
    }
    # funding and open interest may legitimately start later than prices
    return Loaded(
        report.rows, metadata, [s.instrument_key for s in series], must_have_rows=metric == PRICE_METRIC
    )


SOURCE = Source(
    name="aperiodic",
    label="Aperiodic",
    order=1,
    parse_section=parse_section,
    raw_assets=raw_assets,
    load=load,
    resource=lazy("pipelines.sources.aperiodic.resource:AperiodicResource.from_env"),
    emulator_handler=lazy("pipelines.sources.aperiodic.emulator:AperiodicHandler"),
    emulator_root="/api/v1",
    vendor_names=vendor_names,
    observations={
        "int_price_observations": "staging.stg_aperiodic__derivative_price",
        "int_carry_observations": "intermediate.int_aperiodic__carry_observations",
    },
)
