"""Atlas universal symbology, the one instrument key across every vendor: ``<type>-<BASE>-<QUOTE>
[:<MARGIN>][-<YYYYMMDD>]`` (``future-BTC-USD:BTC-20260327``), parsed here (the ``atlas`` package needs
Python 3.12+); Atlas has no option format, so options add ``-<STRIKE>-<C|P>``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_ATLAS = re.compile(
    r"^(?P<kind>spot|perpetual|future|option)-(?P<base>[A-Z0-9]+)-(?P<quote>[A-Z0-9]+)"
    r"(?::(?P<settle>[A-Z0-9]+))?(?:-(?P<expiry>\d{8}))?"
    r"(?:-(?P<strike>\d+(?:\.\d+)?)-(?P<right>[CP]))?$"
)


class SymbolError(ValueError):
    """A symbol that is not valid Atlas symbology."""


@dataclass(frozen=True)
class Instrument:
    """The parts of an Atlas key, typed once so nothing downstream re-parses strings."""

    instrument_key: str
    kind: str
    base: str
    quote: str
    settle: str | None
    expiry: datetime | None


def parse_symbol(key: str) -> Instrument:
    if (m := _ATLAS.match(key)) is None:
        raise SymbolError(
            f"malformed Atlas symbol {key!r}: expected <type>-<BASE>-<QUOTE>[:<MARGIN>][-<YYYYMMDD>], "
            "e.g. 'perpetual-BTC-USDT:USDT'"
        )
    kind = m["kind"]
    expiry: datetime | None = None
    if m["expiry"]:
        try:  # the key carries only the date; a source that knows the exact expiry time overrides it
            expiry = datetime.strptime(m["expiry"], "%Y%m%d").replace(tzinfo=UTC)
        except ValueError as exc:
            raise SymbolError(f"malformed Atlas symbol {key!r}: bad delivery date {m['expiry']}") from exc
    if kind == "future" and expiry is None:
        raise SymbolError(f"malformed Atlas symbol {key!r}: a future needs a -YYYYMMDD delivery date")
    if kind in ("perpetual", "spot") and expiry is not None:
        raise SymbolError(f"malformed Atlas symbol {key!r}: a {kind} has no delivery date")
    if kind != "option" and m["strike"]:
        raise SymbolError(f"malformed Atlas symbol {key!r}: only options carry a strike")
    if kind == "option" and not (expiry and m["strike"]):
        raise SymbolError(
            f"malformed option symbol {key!r}: expected "
            "option-<BASE>-<QUOTE>:<MARGIN>-<YYYYMMDD>-<STRIKE>-<C|P>"
        )
    return Instrument(key, kind, m["base"], m["quote"], m["settle"], expiry)
