"""One instrument entry of a universe file, and the checks every vendor section shares (below the sources)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipelines.symbology import Instrument, SymbolError, parse_symbol
from pipelines.venues import VenueError, get_venue


class UniverseError(ValueError):
    """The universe file is wrong; the message names the file and the entry."""


def brief(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error shows the entry, not a whole structure."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def section_keys(section: Any, where: str, required: str, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """``section``, checked to be a mapping with no key but ``required`` and ``optional``."""
    if not isinstance(section, dict):
        also = f" (and {', '.join(map(repr, optional))})" if optional else ""
        raise UniverseError(f"{where}: expected a mapping with {required!r}{also}")
    if unknown := set(section) - {required, *optional}:
        raise UniverseError(f"{where}: unknown key(s) {sorted(unknown)}")
    return section


def choices(
    values: Any, allowed: tuple[str, ...], what: str, where: str, served: str = "expected one of"
) -> tuple[str, ...]:
    """``values``: a non-empty list of ``allowed`` (``what`` is plural: "intervals")."""
    if not isinstance(values, list) or not values:
        raise UniverseError(f"{where}: {what} must be a non-empty list, one of {', '.join(allowed)}")
    for v in values:
        if v not in allowed:
            raise UniverseError(f"{where}: unknown {what[:-1]} {brief(v)}; {served} {', '.join(allowed)}")
    return tuple(values)


History = tuple[tuple[datetime, float, str], ...]  # (from, hours, source) of a funding interval


@dataclass(frozen=True)
class UniverseInstrument:
    venue: str
    instrument: Instrument
    contract_size: float | None
    funding_interval_hours: float | None  # the interval in force now (the last of the history)
    # (from, hours, source) in time order: the venue's default from the start ("venue default"), then
    # the universe's ``funding_interval_hours`` ("universe"); ref.funding_interval holds them
    funding_history: History = ()
    intervals: tuple[str, ...] = ()  # its own ``intervals``, overriding its section's (none: the section's)

    @property
    def instrument_key(self) -> str:
        return self.instrument.instrument_key


def _positive_number(value: Any, name: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise UniverseError(f"{where}: {name} must be a positive number, got {brief(value)}")
    return float(value)


ENTRY_KEYS = ("venue", "symbol", "funding_interval_hours", "contract_size", "intervals")


def parse_instrument(
    entry: Any,
    where: str,
    venues: tuple[str, ...],
    intervals: tuple[str, ...] = (),
    served: str = "expected one of",
) -> UniverseInstrument:
    """One ``{venue, symbol[, funding_interval_hours, contract_size, intervals]}`` entry, validated;
    its ``intervals`` like its section's (``intervals`` allowed, ``served`` in the error), where the
    section has them."""
    if not isinstance(entry, dict) or "venue" not in entry or "symbol" not in entry:
        raise UniverseError(f"{where}: each instrument needs 'venue' and 'symbol', got {brief(entry)}")
    if unknown := sorted(set(entry) - set(ENTRY_KEYS)):  # a misspelt key would be ignored silently
        raise UniverseError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))}; expected {', '.join(ENTRY_KEYS)}"
        )
    try:
        venue = get_venue(str(entry["venue"]))
        instrument = parse_symbol(str(entry["symbol"]))
    except (VenueError, SymbolError) as exc:
        raise UniverseError(f"{where}: {exc}") from None
    if venue.name not in venues:
        raise UniverseError(f"{where}: venue {venue.name!r} is not served here; expected one of {venues}")
    hours = venue.funding_interval_hours
    default = () if hours is None else ((SINCE_EVER, hours, "venue default"),)
    history = _funding_history(entry.get("funding_interval_hours"), default, where)
    if instrument.kind != "perpetual":  # checked all the same
        history = ()
    size = _positive_number(entry.get("contract_size", venue.linear_contract_size), "contract_size", where)
    own = entry.get("intervals")
    if own is not None and not intervals:
        raise UniverseError(f"{where}: 'intervals' is not set per instrument in this section")
    own = () if own is None else tuple(dict.fromkeys(choices(own, intervals, "intervals", where, served)))
    return UniverseInstrument(venue.name, instrument, size, history[-1][1] if history else None, history, own)


SINCE_EVER = datetime(1970, 1, 1, tzinfo=UTC)


def _funding_history(value: Any, default: History, where: str) -> History:
    """``funding_interval_hours``: hours from the start, or ``{<UTC date or time>: hours, ...}``, each
    from that moment on (Binance moves symbols between 8, 4 and 1 h), the venue's default before."""
    if value is None:
        return default
    history = list(default) if isinstance(value, dict) else []
    for since, hours in value.items() if isinstance(value, dict) else [(SINCE_EVER, value)]:
        try:
            moment = since if isinstance(since, datetime) else datetime.fromisoformat(str(since))
        except ValueError:
            raise UniverseError(
                f"{where}: funding_interval_hours: {brief(since)} is not a date or time"
            ) from None
        hours = _positive_number(hours, "funding_interval_hours", where)
        history.append(
            (moment if moment.tzinfo else moment.replace(tzinfo=UTC), float(hours or 0), "universe")
        )
    return tuple(sorted({m: (m, h, src) for m, h, src in history}.values()))  # one per moment, the universe's
