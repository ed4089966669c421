"""CayøLargo as a source: Deribit futures snapshots for the universe's coins; its instruments are
found in the data, so their reference rows are written with each batch's rows."""

from __future__ import annotations

from datetime import date

from pipelines.sources.cayolargo.mapping import MappingError, to_deribit
from pipelines.sources.cayolargo.universe import CayoLargoUniverse, parse_section
from pipelines.sources.source import RawAsset, Source, lazy


def raw_assets(section: CayoLargoUniverse) -> list[RawAsset]:
    return [
        RawAsset(
            "futures",
            "CayøLargo Deribit futures and perpetual snapshots (mark, index, last, funding, open "
            "interest) every 10 minutes for the universe's coins, one month per partition.",
            frozenset({"duckdb", "json"}),
        )
    ]


def carries(section: CayoLargoUniverse, start_month: date, key: str) -> bool:
    """Instruments are discovered from the coins' data: a key is carried when its coin is listed."""
    try:
        return to_deribit(key).coin in section.coins
    except MappingError:
        return False


SOURCE = Source(
    name="cayolargo",
    label="CayøLargo",
    order=3,
    parse_section=parse_section,
    raw_assets=raw_assets,
    load=lazy("pipelines.sources.cayolargo.load:load"),
    resource=lazy("pipelines.sources.cayolargo.resource:CayoLargoResource.from_env"),
    emulator_handler=lazy(
        "pipelines.sources.cayolargo.emulator:CayoLargoHandler"
    ),  # auth, envelope, plan set on it
    carries=carries,
    env=("BASE_URL", "API_KEY", "AUTH_HEADER", "ENVELOPE"),
    observations={
        "int_price_observations": "intermediate.int_cayolargo__price_observations",
        "int_carry_observations": "intermediate.int_cayolargo__carry_observations",
    },
)
