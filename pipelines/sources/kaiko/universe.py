"""The ``kaiko:`` section of the universe file (example: ``pipelines/universe/demo.yaml``); an
instrument Kaiko cannot name fails here, before anything is downloaded."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pipelines.reference import VendorName
from pipelines.sources.kaiko.mapping import KAIKO_VENUES, KaikoCode, MappingError, to_kaiko, with_expiry
from pipelines.universe.instruments import (
    UniverseError,
    UniverseInstrument,
    choices,
    parse_instrument,
    section_keys,
)

KAIKO_INTERVALS: tuple[str, ...] = ("1m", "1h", "4h", "1d")


@dataclass(frozen=True)
class KaikoUniverse:
    instruments: tuple[UniverseInstrument, ...]
    intervals: tuple[str, ...]

    def code(self, instrument: UniverseInstrument) -> KaikoCode:
        """Kaiko's name for it (every listed one has one: ``parse_section`` checked)."""
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
        inst = parse_instrument(entry, at, KAIKO_VENUES)
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
