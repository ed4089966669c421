"""Reference data (instruments and each vendor's names for them) written from the universe."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from pipelines.storage import read_sql, transaction, with_commit_retry
from pipelines.universe import UniverseInstrument


@dataclass(frozen=True)
class VendorName:
    vendor: str
    vendor_exchange: str
    vendor_instrument_class: str
    vendor_instrument: str
    venue: str
    instrument_key: str


def upsert_reference(
    con: duckdb.DuckDBPyConnection, instruments: Iterable[UniverseInstrument], names: Iterable[VendorName]
) -> None:
    instruments = list(instruments)
    rows = pa.Table.from_pylist(
        [
            {
                "venue": i.venue,
                "instrument_key": i.key,
                "kind": i.instrument.kind,
                "base": i.instrument.base,
                "quote": i.instrument.quote,
                "settle": i.instrument.settle,
                "expiry": i.instrument.expiry,
                "contract_size": i.contract_size,
                "funding_interval_hours": i.funding_interval_hours,
            }
            for i in instruments
        ],
        schema=pa.schema(
            [
                ("venue", pa.string()),
                ("instrument_key", pa.string()),
                ("kind", pa.string()),
                ("base", pa.string()),
                ("quote", pa.string()),
                ("settle", pa.string()),
                ("expiry", pa.timestamp("us", tz="UTC")),
                ("contract_size", pa.float64()),
                ("funding_interval_hours", pa.float64()),
            ]
        ),
    )
    mapping = pa.Table.from_pylist(
        [n.__dict__ for n in names],
        schema=pa.schema([(f, pa.string()) for f in VendorName.__dataclass_fields__]),
    )
    con.register("universe_instruments", rows)
    con.register("universe_vendor_instruments", mapping)

    # inside the caller's transaction when it has one (CayøLargo: with its rows); readers read
    # published snapshots, so the moment between delete and insert is never visible to them
    try:
        con.execute(read_sql("load/reference_instrument"))
        con.execute(read_sql("load/reference_vendor_instrument"))
    finally:
        con.unregister("universe_instruments")
        con.unregister("universe_vendor_instruments")


def commit_reference(
    con: duckdb.DuckDBPyConnection, instruments: Iterable[UniverseInstrument], names: Iterable[VendorName]
) -> None:
    """``upsert_reference`` as its own transaction, retried when its commit meets another's.

    Why: the vendors load in parallel processes and each upserts the shared ref tables; as
    separate autocommitted statements two upserts could interleave (both deletes, then both
    inserts: duplicate rows), and a concurrent commit fails with "database is locked". One
    transaction per upsert lets DuckLake detect the conflict, and the retry redoes it whole.
    """
    instruments, names = list(instruments), list(names)

    def work() -> None:
        with transaction(con):
            upsert_reference(con, instruments, names)

    with_commit_retry(work, "reference")
