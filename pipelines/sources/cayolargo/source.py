"""CayøLargo: Deribit snapshots for the universe's coins (instruments are found in the data), and the
one place Deribit ids meet Atlas keys (README.md); Deribit's day has no leading zero (``BTC-5JAN24``)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, NamedTuple

from pipelines.sources.source import RawAsset, Source, lazy
from pipelines.symbology import Instrument, SymbolError, parse_symbol
from pipelines.universe.instruments import UniverseError, UniverseInstrument, section_keys
from pipelines.venues import get_venue

VENUE, VENDOR = "deribit", "cayolargo"
# Deribit perpetual funding is quoted per 8 hours (vendor doc: funding annualized = rate x 3 x 365)
FUNDING_INTERVAL_HOURS: float = get_venue(VENUE).funding_interval_hours or 8.0
CONTRACT_TYPES = {"PERPETUALS": "perpetual", "FUTURES": "future"}  # the vendor's contract_type -> Atlas kind

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DERIBIT = re.compile(
    r"^(?P<base>[A-Z0-9]+)(?:_(?P<quote>[A-Z0-9]+))?-"
    r"(?:(?P<perp>PERPETUAL)|(?P<day>\d{1,2})(?P<mon>[A-Z]{3})(?P<yy>\d{2}))$"
)


class MappingError(ValueError):
    """An instrument id or Atlas key with no counterpart on the other side (named in the message)."""


class DeribitInstrument(NamedTuple):
    instrument_id: str
    instrument: Instrument  # parsed Atlas key (expiry = delivery date at midnight)

    @property
    def instrument_key(self) -> str:
        return self.instrument.instrument_key

    @property
    def coin(self) -> str:
        return self.instrument.base

    @property
    def contract_type(self) -> str:
        return "PERPETUALS" if self.instrument.kind == "perpetual" else "FUTURES"

    @property
    def funding_interval_hours(self) -> float | None:
        return FUNDING_INTERVAL_HOURS if self.instrument.kind == "perpetual" else None


def from_deribit(instrument_id: str) -> DeribitInstrument:
    """``BTC-27MAR26`` -> ``future-BTC-USD:BTC-20260327``; raises MappingError for anything else."""
    if (m := _DERIBIT.match(instrument_id)) is None or (m["mon"] and m["mon"] not in _MONTHS):
        raise MappingError(
            f"unknown Deribit instrument id {instrument_id!r}: expected <COIN>[_<QUOTE>]-PERPETUAL "
            "or <COIN>[_<QUOTE>]-<D>MMMYY (e.g. BTC-PERPETUAL, BTC-27MAR26)"
        )
    base = m["base"]
    quote, settle = (m["quote"], m["quote"]) if m["quote"] else ("USD", base)
    if m["perp"]:
        key = f"perpetual-{base}-{quote}:{settle}"
    else:
        try:
            delivery = date(2000 + int(m["yy"]), _MONTHS.index(m["mon"]) + 1, int(m["day"]))
        except ValueError:
            raise MappingError(f"Deribit instrument id {instrument_id!r} has an impossible date") from None
        key = f"future-{base}-{quote}:{settle}-{delivery:%Y%m%d}"
    return DeribitInstrument(instrument_id, parse_symbol(key))


def to_deribit(key: str) -> DeribitInstrument:
    """``future-BTC-USD:BTC-20260327`` -> ``BTC-27MAR26``; MappingError for what CayøLargo lacks."""
    try:
        inst = parse_symbol(key)
    except SymbolError as exc:
        raise MappingError(str(exc)) from None
    if inst.kind not in ("perpetual", "future"):
        raise MappingError(f"{key!r}: CayøLargo serves Deribit perpetuals and dated futures only")
    if inst.quote == "USD" and inst.settle == inst.base:
        prefix = inst.base
    elif inst.settle is not None and inst.settle == inst.quote and inst.quote != "USD":
        prefix = f"{inst.base}_{inst.quote}"
    else:
        raise MappingError(
            f"{key!r}: no Deribit name; Deribit contracts are inverse (<COIN>-USD:<COIN>) "
            "or linear in their quote (<COIN>-USDC:USDC)"
        )
    if (d := inst.expiry) is None:  # a perpetual (parse_symbol gives a future its expiry, a perpetual none)
        instrument_id = f"{prefix}-PERPETUAL"
    else:
        instrument_id = f"{prefix}-{d.day}{_MONTHS[d.month - 1]}{d.year % 100:02d}"
    return DeribitInstrument(instrument_id, inst)


_COIN = re.compile(r"^[A-Z0-9]{2,10}$")


class CayoLargoUniverse(NamedTuple):
    coins: tuple[str, ...]
    instruments: tuple[UniverseInstrument, ...] = ()  # discovered from the data, not listed


def parse_section(section: dict[str, Any], where: str) -> CayoLargoUniverse:
    coins = section_keys(section, where, "coins").get("coins")
    if not isinstance(coins, list) or not coins:
        raise UniverseError(f"{where}: 'coins' must be a non-empty list, e.g. [BTC, ETH, SOL]")
    for i, coin in enumerate(coins):
        if not isinstance(coin, str) or not _COIN.match(coin):
            raise UniverseError(f"{where}.coins[{i}]: {coin!r} is not a coin code like BTC (upper case)")
    if len(set(coins)) != len(coins):
        raise UniverseError(f"{where}: a coin is listed twice")
    return CayoLargoUniverse(tuple(coins))


def carries(section: CayoLargoUniverse, start_month: date, key: str) -> bool:
    """Instruments are discovered from the coins' data: a key is carried when its coin is listed."""
    try:
        return to_deribit(key).coin in section.coins
    except MappingError:
        return False


DESCRIPTION = (
    "CayøLargo Deribit futures and perpetual snapshots (mark, index, last, funding, open interest) every "
    "10 minutes for the universe's coins, one month per partition."
)
SOURCE = Source(
    name="cayolargo",
    label="CayøLargo",
    order=3,
    parse_section=parse_section,
    raw_assets=lambda section: [RawAsset("futures", DESCRIPTION, frozenset({"duckdb", "json"}))],
    load=lazy("pipelines.sources.cayolargo.load:load"),
    resource=lazy("pipelines.sources.cayolargo.client:CayoLargoResource.from_env"),
    emulator_handler=lazy("pipelines.sources.cayolargo.emulator:CayoLargoHandler"),  # auth, envelope, plan
    carries=carries,
    env=("BASE_URL", "API_KEY", "AUTH_HEADER", "ENVELOPE"),
    observations={
        "int_price_observations": "intermediate.int_cayolargo__price_observations",
        "int_carry_observations": "intermediate.int_cayolargo__carry_observations",
    },
)
