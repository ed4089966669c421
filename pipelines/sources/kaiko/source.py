"""Kaiko as a source: one raw asset, ``derivatives.v2/price`` for the instruments the universe lists.

Light at import (the registry is read by the CLI): the client and loader load inside ``load``.
"""

from __future__ import annotations

from pipelines.sources.kaiko.mapping import vendor_names
from pipelines.sources.kaiko.universe import KaikoUniverse, parse_section
from pipelines.sources.source import Loaded, LoadRequest, RawAsset, Source, lazy


def raw_assets(section: KaikoUniverse) -> list[RawAsset]:
    return [
        RawAsset(
            "derivative_price",
            "Kaiko derivatives.v2/price (mark, index, last) for the universe, one month per partition.",
            frozenset({"duckdb", "json"}),
        )
    ]


def load(request: LoadRequest) -> Loaded:
    from pipelines.partitions import selected_instruments
    from pipelines.sources.kaiko.load import Series, load_months

    section = request.section
    series = [
        Series(i.venue, i.instrument_key, section.code(i), interval)
        for i in selected_instruments(section.instruments, request.instruments, "Kaiko")
        for interval in section.intervals
    ]
    resource = request.resource
    report = load_months(
        resource.client(),
        request.warehouse,
        series,
        request.months,
        workers=resource.workers,
        progress=request.progress,
        reference=request.reference,
    )
    return Loaded.of(
        report,
        [s.instrument_key for s in series],
        pages=report.pages,
        bytes=report.bytes,
        duplicates_dropped=report.duplicates,
        months_without_rows=report.empty,
    )


SOURCE = Source(
    name="kaiko",
    label="Kaiko",
    order=2,
    parse_section=parse_section,
    raw_assets=raw_assets,
    load=load,
    resource=lazy("pipelines.sources.kaiko.resource:KaikoResource.from_env"),
    emulator_handler=lazy("pipelines.sources.kaiko.emulator:KaikoHandler"),
    vendor_names=vendor_names,
    observations={
        "int_price_observations": "staging.stg_kaiko__derivative_price",
        "int_carry_observations": "intermediate.int_kaiko__carry_observations",
    },
)
