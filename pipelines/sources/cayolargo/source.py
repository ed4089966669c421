"""CayøLargo as a source: one raw asset of Deribit futures snapshots for the universe's coins.

The section lists coins, not instruments: the instruments (and their reference rows) are found in
the data, so they are written with each batch's rows, not from the universe before the load.
Light at import (the registry is read by the CLI): the client and loader load inside ``load``.
"""

from __future__ import annotations

from datetime import date

from pipelines.sources.cayolargo.universe import CayoLargoUniverse, parse_section
from pipelines.sources.source import Loaded, LoadRequest, RawAsset, Source, lazy


def raw_assets(section: CayoLargoUniverse) -> list[RawAsset]:
    return [
        RawAsset(
            "futures",
            "CayøLargo Deribit futures and perpetual snapshots (mark, index, last, funding, open "
            "interest) every 10 minutes for the universe's coins, one month per partition.",
            frozenset({"duckdb", "json"}),
        )
    ]


def load(request: LoadRequest) -> Loaded:
    import dagster as dg

    from pipelines.sources.cayolargo.load import load_months, plan_walks
    from pipelines.sources.cayolargo.mapping import MappingError

    coins = request.section.coins
    try:
        plan_walks(coins, request.months, request.instruments)  # fail before any request on a bad key
    except MappingError as exc:
        raise dg.Failure(f"instrument not served by CayøLargo: {exc}") from None
    resource = request.resource
    report = load_months(
        resource.client(),
        request.warehouse,
        coins,
        request.months,
        instruments=request.instruments,
        workers=resource.workers,
        progress=request.progress,
    )
    return Loaded.of(report, must_have_rows=False, pages=report.pages, walks_without_rows=report.skipped)


def carries(section: CayoLargoUniverse, start_month: date, key: str) -> bool:
    """Instruments are discovered from the coins' data: a key is carried when its coin is listed."""
    from pipelines.sources.cayolargo.load import plan_walks
    from pipelines.sources.cayolargo.mapping import MappingError

    try:
        plan_walks(section.coins, [start_month], [key])
    except MappingError:
        return False
    return True


SOURCE = Source(
    name="cayolargo",
    label="CayøLargo",
    order=3,
    parse_section=parse_section,
    raw_assets=raw_assets,
    load=load,
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
