"""Kaiko: ``derivatives.v2/price``, and the one place Kaiko's names meet Atlas keys (README.md), so an
instrument Kaiko cannot name fails when the universe is read, before any download."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pipelines.reference import VendorName
from pipelines.sources.source import RawAsset, Source, lazy
from pipelines.symbology import Instrument, SymbolError, parse_symbol
from pipelines.universe.instruments import (
    UniverseError,
    UniverseInstrument,
    choices,
    parse_instrument,
    section_keys,
)

KAIKO_VENUES = ("binance-futures", "okx-perps", "okx-futures", "okx-options")  # those markhouse can name
KAIKO_INTERVALS = ("1m", "1h", "4h", "1d")
EXPIRY_HOUR_UTC = {"bnce": 8, "okex": 8}  # delivery time of day (UTC) of dated contracts, per exchange


class MappingError(ValueError):
    """An instrument Kaiko cannot be asked for, or a Kaiko code markhouse cannot name."""


class KaikoCode(NamedTuple):
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
    if (venue := _CODE_VENUES.get((code.exchange, code.instrument_class))) is None:
        raise MappingError(f"no venue for Kaiko exchange/class {code.exchange}/{code.instrument_class}")
    try:
        if code.instrument_class == "perpetual-future":
            base, quote = _split_pair(code.instrument.replace("-", ""), code)
            key = f"perpetual-{base}-{quote}:{_settle(code, base, quote)}"
        elif code.instrument_class == "future":
            if (m := _FUTURE_CODE.match(code.instrument)) is None:
                raise MappingError(f"Kaiko future code {code.instrument!r} has no YYMMDD delivery date")
            base, quote = _split_pair(m["pair"], code)
            key = f"future-{base}-{quote}:{_settle(code, base, quote)}-20{m['date']}"
        else:
            if (m := _OPTION_CODE.match(code.instrument)) is None:
                raise MappingError(
                    f"Kaiko option code {code.instrument!r} is not <base>-<quote>-<yymmdd>-<strike>-<c|p>"
                )
            base, quote = m["base"].upper(), m["quote"].upper()
            key = f"option-{base}-{quote}:{_settle(code, base, quote)}-20{m['date']}-{m['strike']}-{m['right'].upper()}"
        instrument = parse_symbol(key)
    except SymbolError as exc:
        raise MappingError(f"Kaiko code {code}: {exc}") from None
    return venue, with_expiry(code.exchange, instrument)


def expiry_of(exchange: str, instrument: Instrument) -> datetime | None:
    if (d := instrument.expiry) is None:
        return None
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


class KaikoUniverse(NamedTuple):
    instruments: tuple[UniverseInstrument, ...]
    intervals: tuple[str, ...]

    def code(self, instrument: UniverseInstrument) -> KaikoCode:  # every listed one has one
        return to_kaiko(instrument.venue, instrument.instrument)


def parse_section(section: dict[str, Any], where: str) -> KaikoUniverse:
    section = section_keys(section, where, "instruments", ("intervals",))
    entries = section.get("instruments") or []
    if not isinstance(entries, list) or not entries:
        raise UniverseError(f"{where}: 'instruments' is empty")
    intervals = choices(section.get("intervals", ["1m"]), KAIKO_INTERVALS, "intervals", where, "Kaiko serves")
    instruments: dict[tuple[str, str], UniverseInstrument] = {}
    for i, entry in enumerate(entries):
        at = f"{where}.instruments[{i}]"
        inst = parse_instrument(entry, at, KAIKO_VENUES, KAIKO_INTERVALS, "Kaiko serves")
        try:
            code = to_kaiko(inst.venue, inst.instrument)
        except MappingError as exc:
            raise UniverseError(f"{at}: {exc}") from None
        if (inst.venue, inst.instrument_key) in instruments:
            raise UniverseError(f"{at}: {inst.instrument_key} on {inst.venue} is listed twice")
        exact = with_expiry(code.exchange, inst.instrument)
        instruments[(inst.venue, inst.instrument_key)] = replace(inst, instrument=exact)
    return KaikoUniverse(tuple(instruments.values()), tuple(dict.fromkeys(intervals)))


def vendor_names(section: KaikoUniverse) -> list[VendorName]:
    return [
        VendorName("kaiko", c.exchange, c.instrument_class, c.instrument, i.venue, i.instrument_key)
        for i in section.instruments
        for c in (section.code(i),)
    ]


DESCRIPTION = "Kaiko derivatives.v2/price (mark, index, last) for the universe, one month per partition."
SOURCE = Source(
    name="kaiko",
    label="Kaiko",
    order=2,
    parse_section=parse_section,
    raw_assets=lambda section: [RawAsset("derivative_price", DESCRIPTION, frozenset({"duckdb", "json"}))],
    load=lazy("pipelines.sources.kaiko.load:load"),
    resource=lazy("pipelines.sources.kaiko.client:KaikoResource.from_env"),
    emulator_handler=lazy("pipelines.sources.kaiko.emulator:KaikoHandler"),
    vendor_names=vendor_names,
    observations={
        "int_price_observations": "staging.stg_kaiko__derivative_price",
        "int_carry_observations": "intermediate.int_kaiko__carry_observations",
    },
)
