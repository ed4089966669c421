"""The ``aperiodic:`` section of the universe file (example: ``pipelines/universe/demo.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.universe.instruments import UniverseError, UniverseInstrument, choices, parse_instrument

APERIODIC_INTERVALS = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
APERIODIC_VENUES = ("binance-futures", "okx-perps", "hyperliquid-perps")
TIMESTAMP_TYPES = ("exchange", "true")
PRICE_METRIC = "derivative_price"
APERIODIC_METRICS = (PRICE_METRIC, "funding", "open_interest", "basis")
METRIC_VENUES: dict[str, tuple[str, ...]] = {
    PRICE_METRIC: APERIODIC_VENUES,
    "funding": ("binance-futures", "okx-perps"),
    "open_interest": (
        "binance-futures",
        "okx-perps",
        "hyperliquid-perps",
    ),  # one catalog page omits hyperliquid
    "basis": ("binance-futures", "okx-perps"),
}
"""The venues each metric's catalog page lists: a universe that asks for a metric by name refuses
another venue; with every metric (the default), the load skips it with a warning."""
PERPETUAL_METRICS = ("funding", "open_interest")  # what a dated contract does not have (or we do not load)


def asks_for(metric: str, instrument: UniverseInstrument) -> bool:
    """Whether ``metric`` is loaded for ``instrument`` at all (its venue aside)."""
    return metric not in PERPETUAL_METRICS or instrument.instrument.kind == "perpetual"


@dataclass(frozen=True)
class AperiodicUniverse:
    instruments: tuple[UniverseInstrument, ...]
    intervals: tuple[str, ...]
    timestamp_types: tuple[str, ...]
    metrics: tuple[str, ...] = APERIODIC_METRICS
    all_metrics: bool = True  # ``metrics: all`` (the default): a venue a metric does not cover is skipped


def _yaml_words(values: Any) -> Any:
    """YAML 1.1 reads a bare ``true`` as a boolean; the timestamp type ``true`` is spelled so."""
    if isinstance(values, list):
        return [str(v).lower() if isinstance(v, bool) else v for v in values]
    return values


def parse_section(section: Any, where: str) -> AperiodicUniverse:
    sec = section or {}
    entries = sec.get("instruments") or []
    if not entries:
        raise UniverseError(f"{where}: 'instruments' is empty")
    instruments = tuple(
        parse_instrument(e, f"{where}.instruments[{i}]", APERIODIC_VENUES) for i, e in enumerate(entries)
    )
    keys = [(i.venue, i.instrument_key) for i in instruments]
    if len(set(keys)) != len(keys):
        raise UniverseError(f"{where}: an instrument is listed twice")
    every = sec.get("metrics", "all") == "all"  # ``metrics: all`` or none given
    metrics = APERIODIC_METRICS if every else choices(sec["metrics"], APERIODIC_METRICS, "metrics", where)
    for metric in () if every else metrics:
        for n, i in enumerate(instruments):
            if i.venue not in METRIC_VENUES[metric] and asks_for(metric, i):
                raise UniverseError(
                    f"{where}.instruments[{n}]: Aperiodic {metric} does not cover {i.venue}; "
                    f"it covers {', '.join(METRIC_VENUES[metric])}"
                )
    return AperiodicUniverse(
        instruments=instruments,
        intervals=choices(sec.get("intervals", ["1h"]), APERIODIC_INTERVALS, "intervals", where),
        timestamp_types=choices(
            _yaml_words(sec.get("timestamp_types", ["exchange"])), TIMESTAMP_TYPES, "timestamp_types", where
        ),
        metrics=metrics,
        all_metrics=every,
    )
