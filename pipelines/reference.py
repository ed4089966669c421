"""Reference data (``ref.instrument``, each vendor's names for them, funding intervals), written in the
transaction of the raw rows they describe: CayøLargo's are found in its data, and a failed batch leaves
neither. The upsert rewrites only rows that differ, so writing the section with every batch is cheap."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from pipelines.universe.instruments import SINCE_EVER, UniverseInstrument
from pipelines.warehouse.lake import read_sql, registered_tables


@dataclass(frozen=True)
class VendorName:
    vendor: str
    vendor_exchange: str
    vendor_instrument_class: str
    vendor_instrument: str
    venue: str
    instrument_key: str


@dataclass(frozen=True)
class Reference:
    """What a batch writes to the ref tables, in its transaction (none: the loaders' tests)."""

    instruments: Sequence[UniverseInstrument] = ()
    names: Sequence[VendorName] = ()


_TEXT, _TIME, _NUMBER = pa.string(), pa.timestamp("us", tz="UTC"), pa.float64()
# ref.instrument's columns, as the universe's instruments fill them
INSTRUMENT_SCHEMA = pa.schema(
    dict.fromkeys(("venue", "instrument_key", "kind", "base", "quote", "settle"), _TEXT)
    | {"expiry": _TIME, "contract_size": _NUMBER, "funding_interval_hours": _NUMBER}
)
FUNDING_SCHEMA = pa.schema(
    {"venue": _TEXT, "instrument_key": _TEXT, "valid_from": _TIME}
    | {"funding_interval_hours": _NUMBER, "source": _TEXT}
)


def upsert_reference(
    con: duckdb.DuckDBPyConnection, instruments: Iterable[UniverseInstrument], names: Iterable[VendorName]
) -> None:
    rows = pa.Table.from_pylist(
        [{**vars(i.instrument), **vars(i)} for i in instruments], schema=INSTRUMENT_SCHEMA
    )
    funding = pa.Table.from_pylist(
        [
            dict(zip(FUNDING_SCHEMA.names, (i.venue, i.instrument_key, *change), strict=True))
            for i in instruments
            for change in i.funding_history
            or ([(SINCE_EVER, i.funding_interval_hours, "venue default")] if i.funding_interval_hours else [])
        ],
        schema=FUNDING_SCHEMA,
    )
    mapping = pa.Table.from_pylist(
        [vars(n) for n in names], schema=pa.schema([(f, _TEXT) for f in VendorName.__dataclass_fields__])
    )
    tables = {"universe_instruments": rows, "universe_vendor_instruments": mapping}
    tables["universe_funding_intervals"] = funding
    # inside the caller's transaction (a batch's, with its rows); readers read published
    # snapshots, so the moment between delete and insert is never visible to them
    with registered_tables(con, tables):
        for name in ("instrument", "vendor_instrument", "funding_interval"):
            con.execute(read_sql(f"load/reference_{name}"))
