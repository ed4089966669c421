"""Aperiodic as a source: one raw asset per metric the universe asks for (default all four)."""

from __future__ import annotations

from pipelines.sources.aperiodic.mapping import vendor_names
from pipelines.sources.aperiodic.universe import AperiodicUniverse, parse_section
from pipelines.sources.source import RawAsset, Source, lazy

DESCRIPTIONS = {
    "derivative_price": "Aperiodic derivative_price files (mark, index, last) for the universe, one month per partition.",
    "funding": "Aperiodic funding files (last and predicted funding rate of each interval, with their statistics) for the universe's perpetuals, one month per partition.",
    "open_interest": "Aperiodic open_interest files (last open interest of each interval, base units, with its statistics) for the universe's perpetuals, one month per partition.",
    "basis": "Aperiodic basis files (last mark - index and mark - last of each interval, with their statistics), cross-checked against markhouse's own basis; one month per partition.",
}


def raw_assets(section: AperiodicUniverse) -> list[RawAsset]:
    return [RawAsset(m, DESCRIPTIONS[m], frozenset({"duckdb", "parquet"})) for m in section.metrics]


SOURCE = Source(
    name="aperiodic",
    label="Aperiodic",
    order=1,
    parse_section=parse_section,
    raw_assets=raw_assets,
    load=lazy("pipelines.sources.aperiodic.load:load"),
    resource=lazy("pipelines.sources.aperiodic.resource:AperiodicResource.from_env"),
    emulator_handler=lazy("pipelines.sources.aperiodic.emulator:AperiodicHandler"),
    emulator_root="/api/v1",
    vendor_names=vendor_names,
    observations={
        "int_price_observations": "staging.stg_aperiodic__derivative_price",
        "int_carry_observations": "intermediate.int_aperiodic__carry_observations",
    },
)
