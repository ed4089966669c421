"""Kaiko's names for instruments <-> markhouse's venue + Atlas key: the one place they live (the
rules, expiry at 08:00 UTC and the option key extension: README.md here)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pipelines.symbology import Instrument, SymbolError, parse_symbol

KAIKO_VENUES: tuple[str, ...] = ("binance-futures", "okx-perps", "okx-futures", "okx-options")
"""Venues markhouse knows how to name on Kaiko."""

EXPIRY_HOUR_UTC: dict[str, int] = {"bnce": 8, "okex": 8}
"""Delivery time of day (UTC) of dated contracts, per Kaiko exchange code."""


class MappingError(ValueError):
    """An instrument Kaiko cannot be asked for, or a Kaiko code markhouse cannot name."""


@dataclass(frozen=True)
class KaikoCode:
    """How Kaiko names one instrument (the three query parameters that select it)."""

    exchange: str
    instrument_class: str
    instrument: str

    def __str__(self) -> str:
        return f"{self.exchange} {self.instrument_class} {self.instrument}"


# (venue, Atlas kind) -> (Kaiko exchange, Kaiko instrument class)
_VENUE_CODES: dict[tuple[str, str], tuple[str, str]] = {
    ("binance-futures", "perpetual"): ("bnce", "perpetual-future"),
    ("binance-futures", "future"): ("bnce", "future"),
    ("okx-perps", "perpetual"): ("okex", "perpetual-future"),
    ("okx-futures", "future"): ("okex", "future"),
    ("okx-options", "option"): ("okex", "option"),
}
_CODE_VENUES: dict[tuple[str, str], str] = {v: k[0] for k, v in _VENUE_CODES.items()}

_FUTURE_CODE = re.compile(r"^(?P<pair>[a-z0-9]+)(?P<date>\d{6})$")
_OPTION_CODE = re.compile(
    r"^(?P<base>[a-z0-9]+)-(?P<quote>[a-z0-9]+)-(?P<date>\d{6})-(?P<strike>\d+(?:\.\d+)?)-(?P<right>[cp])$"
)
_QUOTES = ("usdt", "usdc", "usd", "busd")


def to_kaiko(venue: str, instrument: Instrument) -> KaikoCode:
    try:
        exchange, klass = _VENUE_CODES[(venue, instrument.kind)]
    except KeyError:
        raise MappingError(
            f"Kaiko has no mapping for a {instrument.kind} on {venue!r}; "
            f"mapped: {', '.join(f'{k} on {v}' for v, k in _VENUE_CODES)}"
        ) from None
    base, quote = instrument.base.lower(), instrument.quote.lower()
    yymmdd = instrument.expiry.strftime("%y%m%d") if instrument.expiry else ""
    if instrument.kind == "perpetual":
        code = f"{base}-{quote}" if exchange == "okex" else f"{base}{quote}"
    elif instrument.kind == "future":
        code = f"{base}{quote}{yymmdd}"
    else:
        _, strike, right = instrument.instrument_key.rsplit("-", 2)
        code = f"{base}-{quote}-{yymmdd}-{strike}-{right.lower()}"
    return KaikoCode(exchange, klass, code)


def from_kaiko(code: KaikoCode) -> tuple[str, Instrument]:
    """(venue, instrument) for a Kaiko code, the inverse of ``to_kaiko``; MappingError otherwise."""
    venue = _CODE_VENUES.get((code.exchange, code.instrument_class))
    if venue is None:
        raise MappingError(f"no venue for Kaiko exchange/class {code.exchange}/{code.instrument_class}")
    try:
        if code.instrument_class == "perpetual-future":
            base, quote = _split_pair(code.instrument.replace("-", ""), code)
            key = f"perpetual-{base}-{quote}:{_settle(code, base, quote)}"
        elif code.instrument_class == "future":
            m = _FUTURE_CODE.match(code.instrument)
            if m is None:
                raise MappingError(f"Kaiko future code {code.instrument!r} has no YYMMDD delivery date")
            base, quote = _split_pair(m["pair"], code)
            key = f"future-{base}-{quote}:{_settle(code, base, quote)}-20{m['date']}"
        else:
            m = _OPTION_CODE.match(code.instrument)
            if m is None:
                raise MappingError(
                    f"Kaiko option code {code.instrument!r} is not <base>-<quote>-<yymmdd>-<strike>-<c|p>"
                )
            base, quote = m["base"].upper(), m["quote"].upper()
            settle = _settle(code, base, quote)
            key = f"option-{base}-{quote}:{settle}-20{m['date']}-{m['strike']}-{m['right'].upper()}"
        instrument = parse_symbol(key)
    except SymbolError as exc:
        raise MappingError(f"Kaiko code {code}: {exc}") from None
    return venue, with_expiry(code.exchange, instrument)


def expiry_of(exchange: str, instrument: Instrument) -> datetime | None:
    if instrument.expiry is None:
        return None
    d = instrument.expiry
    return datetime(d.year, d.month, d.day, EXPIRY_HOUR_UTC.get(exchange, 0), tzinfo=UTC)


def with_expiry(exchange: str, instrument: Instrument) -> Instrument:
    """The instrument with its exact expiry time (the Atlas key alone gives midnight)."""
    return replace(instrument, expiry=expiry_of(exchange, instrument))


def _settle(code: KaikoCode, base: str, quote: str) -> str:
    """Binance USD-M contracts settle in the quote; OKX options and USD contracts in the coin."""
    if code.exchange == "okex" and (code.instrument_class == "option" or quote == "USD"):
        return base
    return quote


def _split_pair(pair: str, code: KaikoCode) -> tuple[str, str]:
    for quote in _QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            return pair[: -len(quote)].upper(), quote.upper()
    raise MappingError(f"Kaiko code {code}: cannot tell base from quote in {pair!r}")
