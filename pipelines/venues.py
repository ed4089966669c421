"""Venues markhouse knows, spelled as Aperiodic spells them. Funding intervals are defaults only (an
instrument may override it: Binance moves some symbols to 4h/2h/1h funding)."""

from __future__ import annotations

from typing import NamedTuple


class Venue(NamedTuple):
    name: str
    funding_interval_hours: float | None
    linear_contract_size: float | None  # base units per contract for linear perps/futures, when fixed


VENUES: dict[str, Venue] = {
    v.name: v
    for v in (
        Venue("binance-futures", 8, 1.0),
        Venue("okx-perps", 8, None),
        Venue("okx-futures", None, None),
        Venue("okx-options", None, None),
        Venue("hyperliquid-perps", 1, 1.0),
        Venue("deribit", 8, None),
    )
}


class VenueError(ValueError):
    """A venue that markhouse does not know."""


def get_venue(name: str) -> Venue:
    try:
        return VENUES[name]
    except KeyError:
        raise VenueError(f"unknown venue {name!r}; known venues: {', '.join(sorted(VENUES))}") from None
