"""Kaiko as a source: one raw asset, ``derivatives.v2/price`` for the instruments the universe lists."""

from __future__ import annotations

from pipelines.sources.kaiko.universe import KaikoUniverse, parse_section, vendor_names
from pipelines.sources.source import RawAsset, Source, lazy


def raw_assets(section: KaikoUniverse) -> list[RawAsset]:
    return [
        RawAsset(
            "derivative_price",
            "Kaiko derivatives.v2/price (mark, index, last) for the universe, one month per partition.",
            frozenset({"duckdb", "json"}),
        )
    ]


SOURCE = Source(
    name="kaiko",
    label="Kaiko",
    order=2,
    parse_section=parse_section,
    raw_assets=raw_assets,
    load=lazy("pipelines.sources.kaiko.load:load"),
    resource=lazy("pipelines.sources.kaiko.resource:KaikoResource.from_env"),
    emulator_handler=lazy("pipelines.sources.kaiko.emulator:KaikoHandler"),
    vendor_names=vendor_names,
    observations={
        "int_price_observations": "staging.stg_kaiko__derivative_price",
        "int_carry_observations": "intermediate.int_kaiko__carry_observations",
    },
)
