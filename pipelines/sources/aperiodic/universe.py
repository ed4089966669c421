"""The ``aperiodic:`` section of the universe file (example: ``pipelines/universe/demo.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.universe.instruments import UniverseError, UniverseInstrument, choices, parse_instrument

APERIODIC_INTERVALS = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
APERIODIC_VENUES = ("binance-futures", "okx-perps", "hyperliquid-perps")
TIMESTAMP_TYPES = ("exchange", "true")
PRICE_METRIC = "derivative_price"
APERIODIC_METRICS = (PRICE_METRIC, "funding", "open_interest")


@dataclass(frozen=True)
class AperiodicUniverse:
    instruments: tuple[UniverseInstrument, ...]
    intervals: tuple[str, ...]
    timestamp_types: tuple[str, ...]
    metrics: tuple[str, ...] = APERIODIC_METRICS


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
    return AperiodicUniverse(
        instruments=instruments,
        intervals=choices(sec.get("intervals", ["1h"]), APERIODIC_INTERVALS, "intervals", where),
        timestamp_types=choices(
            _yaml_words(sec.get("timestamp_types", ["exchange"])), TIMESTAMP_TYPES, "timestamp_types", where
        ),
        metrics=choices(sec.get("metrics", list(APERIODIC_METRICS)), APERIODIC_METRICS, "metrics", where),
    )
