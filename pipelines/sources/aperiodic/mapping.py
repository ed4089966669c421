"""Aperiodic names venues and instruments as markhouse does: the mapping is the identity."""

from __future__ import annotations

from pipelines.reference import VendorName
from pipelines.sources.aperiodic.universe import AperiodicUniverse


def vendor_names(section: AperiodicUniverse) -> list[VendorName]:
    """One ref.vendor_instrument row per listed instrument: (exchange, kind, symbol) = (venue, kind, key)."""
    return [
        VendorName("aperiodic", i.venue, i.instrument.kind, i.instrument_key, i.venue, i.instrument_key)
        for i in section.instruments
    ]
