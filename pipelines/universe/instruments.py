"""One instrument entry of a universe file; below the source registry, so it imports none of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.symbology import Instrument, SymbolError, parse_symbol
from pipelines.venues import VenueError, get_venue


class UniverseError(ValueError):
    """The universe file is wrong; the message names the file and the entry."""


def brief(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error shows the entry, not a whole structure."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class UniverseInstrument:
    venue: str
    instrument: Instrument
    contract_size: float | None
    funding_interval_hours: float | None

    @property
    def instrument_key(self) -> str:
        return self.instrument.instrument_key


def _positive_number(entry: dict[str, Any], name: str, default: float | None, where: str) -> float | None:
    value = entry.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise UniverseError(f"{where}: {name} must be a positive number, got {brief(value)}")
    return float(value)


def parse_instrument(entry: Any, where: str, venues: tuple[str, ...]) -> UniverseInstrument:
    """One ``{venue, symbol[, funding_interval_hours, contract_size]}`` entry, validated."""
    if not isinstance(entry, dict) or "venue" not in entry or "symbol" not in entry:
        raise UniverseError(f"{where}: each instrument needs 'venue' and 'symbol', got {brief(entry)}")
    try:
        venue = get_venue(str(entry["venue"]))
        instrument = parse_symbol(str(entry["symbol"]))
    except (VenueError, SymbolError) as exc:
        raise UniverseError(f"{where}: {exc}") from None
    if venue.name not in venues:
        raise UniverseError(f"{where}: venue {venue.name!r} is not served here; expected one of {venues}")
    funding = _positive_number(entry, "funding_interval_hours", venue.funding_interval_hours, where)
    if instrument.kind != "perpetual":
        funding = None
    size = _positive_number(entry, "contract_size", venue.linear_contract_size, where)
    return UniverseInstrument(venue.name, instrument, size, funding)
