"""Aperiodic: a raw asset per metric asked for (default all four); it names instruments as markhouse does."""

from __future__ import annotations

from typing import Any, NamedTuple

from pipelines.reference import VendorName
from pipelines.sources.source import RawAsset, Source, lazy
from pipelines.universe.instruments import UniverseError, UniverseInstrument, choices, parse_instrument

APERIODIC_INTERVALS = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
APERIODIC_VENUES = ("binance-futures", "okx-perps", "hyperliquid-perps")
TIMESTAMP_TYPES = ("exchange", "true")
PRICE_METRIC = "derivative_price"
APERIODIC_METRICS = (PRICE_METRIC, "funding", "open_interest", "basis")
# the venues each metric's catalog page lists (one page omits hyperliquid for open interest): a
# universe that asks for a metric by name refuses another venue; with every metric it is skipped
METRIC_VENUES: dict[str, tuple[str, ...]] = dict.fromkeys(APERIODIC_METRICS, APERIODIC_VENUES)
METRIC_VENUES |= dict.fromkeys(("funding", "basis"), APERIODIC_VENUES[:2])
PERPETUAL_METRICS = ("funding", "open_interest")  # what a dated contract does not have (or we do not load)

# each metric's published columns after ``time`` (vendor-docs/aperiodic-derivatives-catalog.md)
PRICE_COLUMNS = ("last_price", "index_price", "mark_price")
DERIVED_COLUMNS = (
    *(f"{p}_pct_change" for p in PRICE_COLUMNS),
    *(f"{a}_{b}_pct_change_ratio" for a, b in (("mark", "index"), ("mark", "last"), ("index", "last"))),
)
_PREDICTED = ("", "_spread", "_spread_bps", "_spread_mean", "_std", "_spread_bps_std")
FUNDING_COLUMNS = ("funding_rate", *(f"predicted_funding_rate{s}" for s in _PREDICTED))
FUNDING_COLUMNS += ("funding_rate_update_frequency", "funding_rate_avg_update_interval")
FUNDING_COLUMNS += ("predicted_funding_rate_update_frequency",)
OPEN_INTEREST_COLUMNS = (
    "open_interest",
    "open_interest_pct_change",
    "open_interest_volatility",
    "oi_price_change_ratio",
)
# the basis and the mark-last spread, each with its bps, then their mean and bps std
_STATS = (("", "_bps"), ("_mean", "_bps_std"))
BASIS_COLUMNS = tuple(f"{m}{s}" for pair in _STATS for m in ("basis", "mark_price_spread") for s in pair)
METRIC_COLUMNS = {  # what a file may hold, by name, in any order
    PRICE_METRIC: ("time", *PRICE_COLUMNS, *DERIVED_COLUMNS),
    "funding": ("time", *FUNDING_COLUMNS),
    "open_interest": ("time", *OPEN_INTEREST_COLUMNS),
    "basis": ("time", *BASIS_COLUMNS),
}


def asks_for(metric: str, instrument: UniverseInstrument) -> bool:
    """Whether ``metric`` is loaded for ``instrument`` at all (its venue aside)."""
    return metric not in PERPETUAL_METRICS or instrument.instrument.kind == "perpetual"


class AperiodicUniverse(NamedTuple):
    instruments: tuple[UniverseInstrument, ...]
    intervals: tuple[str, ...]
    timestamp_types: tuple[str, ...]
    metrics: tuple[str, ...] = APERIODIC_METRICS  # ``all`` (the default): a venue a metric lacks is skipped


def parse_section(section: Any, where: str) -> AperiodicUniverse:
    sec = section or {}
    if not (entries := sec.get("instruments") or []):
        raise UniverseError(f"{where}: 'instruments' is empty")
    instruments = tuple(
        parse_instrument(e, f"{where}.instruments[{i}]", APERIODIC_VENUES, APERIODIC_INTERVALS)
        for i, e in enumerate(entries)
    )
    if len({(i.venue, i.instrument_key) for i in instruments}) != len(instruments):
        raise UniverseError(f"{where}: an instrument is listed twice")
    every = sec.get("metrics", "all") == "all"
    metrics = APERIODIC_METRICS if every else choices(sec["metrics"], APERIODIC_METRICS, "metrics", where)
    for metric in () if every else metrics:
        for n, i in enumerate(instruments):
            if i.venue not in METRIC_VENUES[metric] and asks_for(metric, i):
                raise UniverseError(
                    f"{where}.instruments[{n}]: Aperiodic {metric} does not cover {i.venue}; "
                    f"it covers {', '.join(METRIC_VENUES[metric])}"
                )
    # YAML 1.1 reads a bare ``true`` (a timestamp type) as a boolean
    types = [str(v).lower() if isinstance(v, bool) else v for v in sec.get("timestamp_types", ["exchange"])]
    return AperiodicUniverse(
        instruments=instruments,
        intervals=choices(sec.get("intervals", ["1h"]), APERIODIC_INTERVALS, "intervals", where),
        timestamp_types=choices(types, TIMESTAMP_TYPES, "timestamp_types", where),
        metrics=metrics,
    )


def vendor_names(section: AperiodicUniverse) -> list[VendorName]:
    return [
        VendorName("aperiodic", i.venue, i.instrument.kind, i.instrument_key, i.venue, i.instrument_key)
        for i in section.instruments
    ]


DESCRIPTIONS = {
    "derivative_price": "Aperiodic derivative_price files (mark, index, last) for the universe, one month per partition.",
    "funding": "Aperiodic funding files (last and predicted funding rate of each interval, with their statistics) for the universe's perpetuals, one month per partition.",
    "open_interest": "Aperiodic open_interest files (last open interest of each interval, base units, with its statistics) for the universe's perpetuals, one month per partition.",
    "basis": "Aperiodic basis files (last mark - index and mark - last of each interval, with their statistics), cross-checked against markhouse's own basis; one month per partition.",
}

SOURCE = Source(
    name="aperiodic",
    label="Aperiodic",
    order=1,
    parse_section=parse_section,
    raw_assets=lambda section: [
        RawAsset(m, DESCRIPTIONS[m], frozenset({"duckdb", "parquet"})) for m in section.metrics
    ],
    load=lazy("pipelines.sources.aperiodic.load:load"),
    resource=lazy("pipelines.sources.aperiodic.client:AperiodicResource.from_env"),
    emulator_handler=lazy("pipelines.sources.aperiodic.emulator:AperiodicHandler"),
    emulator_root="/api/v1",
    vendor_names=vendor_names,
    observations={
        "int_price_observations": "staging.stg_aperiodic__derivative_price",
        "int_carry_observations": "intermediate.int_aperiodic__carry_observations",
    },
)
