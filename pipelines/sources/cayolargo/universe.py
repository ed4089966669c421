"""The ``cayolargo:`` section lists coins, not instruments: those are discovered from the data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipelines.universe.instruments import UniverseError, UniverseInstrument, section_keys

DOCUMENTED_COINS = ("BTC", "ETH", "SOL")
_COIN = re.compile(r"^[A-Z0-9]{2,10}$")


@dataclass(frozen=True)
class CayoLargoUniverse:
    coins: tuple[str, ...]
    instruments: tuple[UniverseInstrument, ...] = ()  # discovered from the data, not listed


def parse_section(section: dict[str, Any], where: str) -> CayoLargoUniverse:
    coins = section_keys(section, where, "coins").get("coins")
    if not isinstance(coins, list) or not coins:
        raise UniverseError(
            f"{where}: 'coins' must be a non-empty list, e.g. [{', '.join(DOCUMENTED_COINS)}]"
        )
    for i, coin in enumerate(coins):
        if not isinstance(coin, str) or not _COIN.match(coin):
            raise UniverseError(f"{where}.coins[{i}]: {coin!r} is not a coin code like BTC (upper case)")
    if len(set(coins)) != len(coins):
        raise UniverseError(f"{where}: a coin is listed twice")
    return CayoLargoUniverse(tuple(coins))
