"""CayøLargo's part of a load (``pipelines.sources.loader`` does the rest): one time-window walk per
coin-month (or instrument-month), each page validated as it arrives. A batch replaces whole
coin-months and writes the instruments met in its data to the ref tables."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from functools import partial
from typing import NamedTuple, Unpack

import dagster as dg
import duckdb
import polars as pl
import pyarrow as pa

from pipelines.months import month_bounds
from pipelines.reference import Reference, VendorName
from pipelines.sources.cayolargo.client import CayoLargoClient
from pipelines.sources.cayolargo.mapping import VENDOR, MappingError, from_deribit, to_deribit
from pipelines.sources.cayolargo.schema import ROW_SCHEMA, PageValidationError, validate_page
from pipelines.sources.cayolargo.source import SOURCE
from pipelines.sources.loader import Count, LoadReport, Options, Partition, RawTable, Staged, options_of, run
from pipelines.sources.source import Loaded, LoadRequest
from pipelines.universe.instruments import UniverseInstrument
from pipelines.warehouse.lake import Warehouse, registered_tables

log = logging.getLogger("markhouse.cayolargo")


class Walk(NamedTuple):
    """One time-window walk: a coin (all its instruments, or one) over one month."""

    coin: str
    month: date
    instrument_id: str | None = None


def names(walk: Walk) -> tuple[str, list[str]]:
    """Its label, and its Atlas key (none: the coin's every instrument)."""
    if walk.instrument_id is None:
        return f"cayolargo {walk.coin} {walk.month:%Y-%m}", []
    key = from_deribit(walk.instrument_id).instrument_key
    return f"cayolargo {walk.coin} {walk.instrument_id} {walk.month:%Y-%m}", [key]


def load(request: LoadRequest) -> Loaded:
    coins = request.section.coins
    try:
        plan_walks(coins, request.months, request.instruments)  # fail before any request on a bad key
    except MappingError as exc:
        raise dg.Failure(f"instrument not served by CayøLargo: {exc}") from None
    client, instruments = request.resource.client(), request.instruments
    report = load_months(
        client, request.warehouse, coins, request.months, instruments=instruments, **options_of(request)
    )
    return Loaded.of(report, must_have_rows=False, pages=report.pages, walks_without_rows=report.skipped)


def plan_walks(coins: Sequence[str], months: Iterable[date], instruments: Sequence[str] = ()) -> list[Walk]:
    """Walks for every coin (or only the given Atlas keys, which must belong to the coins)."""
    months = sorted(set(months))
    if not instruments:
        return [Walk(c, m) for m in months for c in coins]
    walks: list[Walk] = []
    for key in instruments:
        deribit = to_deribit(key)
        if deribit.coin not in coins:
            raise MappingError(
                f"{key!r}: coin {deribit.coin} is not in the CayøLargo universe ({', '.join(coins)})"
            )
        walks += [Walk(deribit.coin, m, deribit.instrument_id) for m in months]
    return walks


def load_months(
    client: CayoLargoClient,
    warehouse: Warehouse,
    coins: Sequence[str],
    months: Iterable[date],
    *,
    instruments: Sequence[str] = (),
    **options: Unpack[Options],
) -> LoadReport:
    """Replace ``months`` of every coin (or only ``instruments``, Atlas keys)."""
    months = sorted(set(months))
    walks = plan_walks(coins, months, instruments)
    options.get("progress", log.info)(
        f"cayolargo: {len(walks)} time-window walks for {len(coins)} coins x {len(months)} months"
    )
    units = {m: [w for w in walks if w.month == m] for m in months}
    return run(RAW, warehouse, units, partial(fetch, client), **options)


def fetch(client: CayoLargoClient, walk: Walk, count: Count) -> Staged[Walk]:
    start, end = month_bounds(walk.month)
    label = names(walk)[0]
    parts: list[pa.Table] = []
    pages = 0
    for page in client.pages(walk.coin, start, end, walk.instrument_id):
        pages += 1
        window_from = datetime.fromisoformat(page.window_from.replace("Z", "+00:00"))
        where = f"{label} page {page.number} (from={page.window_from})"
        parts.append(validate_page(page.rows, where, walk.coin, window_from))
        count(len(page.rows))
    frame = pl.DataFrame(pa.concat_tables(parts) if parts else ROW_SCHEMA.empty_table())
    frame = frame.filter(pl.col("ts") < end)  # a vendor treating `to` loosely
    dup = frame.select("ts", "instrument_id").is_duplicated()
    if dup.any():
        row = frame.filter(dup).row(0, named=True)
        raise PageValidationError(
            f"{label}: {row['instrument_id']} at {row['ts']:%Y-%m-%d %H:%M} arrived twice across pages"
        )
    rows = frame.to_arrow().cast(ROW_SCHEMA)
    rows = rows.append_column("month", pa.repeat(pa.scalar(walk.month, pa.date32()), rows.num_rows))
    counts = frame.group_by("venue", "instrument_key").len().sort("instrument_key")
    partitions = [
        Partition(venue, key, "exchange", "10m", walk.month, n, pages) for venue, key, n in counts.iter_rows()
    ]
    return Staged(walk, label, partitions, rows, pages=pages)


def _coin_months(con: duckdb.DuckDBPyConnection, staged: list[Staged[Walk]]) -> pa.Table:
    whole = {(s.unit.coin, s.unit.month) for s in staged if s.unit.instrument_id is None}
    walked = pa.table({"coin": [c for c, _ in whole], "month": [m for _, m in whole]})
    with registered_tables(con, {"walked": walked}):
        return con.execute(SOURCE.load_sql("coin_months")).to_arrow_table()


def _reference(rows: pa.Table) -> Reference:
    """Instruments met in the data, with the vendor's exact expiry and contract size (one per key)."""
    per_key = (
        pl.DataFrame(rows)
        .group_by("instrument_key")
        .agg(
            pl.col("venue").first(),
            pl.col("instrument_id").first(),
            pl.col("contract_type").first(),
            pl.col("expiration_timestamp").sort_by("ts").last(),
            pl.col("contract_size").sort_by("ts").last(),
        )
    )
    instruments: list[UniverseInstrument] = []
    names: list[VendorName] = []
    for row in per_key.sort("instrument_key").iter_rows(named=True):
        deribit = from_deribit(row["instrument_id"])
        inst = deribit.instrument
        if inst.kind == "future":  # the exact expiry (Deribit: 08:00 UTC), not the key's midnight
            inst = replace(inst, expiry=row["expiration_timestamp"])
        instruments.append(
            UniverseInstrument(row["venue"], inst, row["contract_size"], deribit.funding_interval_hours)
        )
        venue, contract_type, instrument_id = row["venue"], row["contract_type"], row["instrument_id"]
        names.append(VendorName(VENDOR, venue, contract_type, instrument_id, venue, inst.instrument_key))
    return Reference(instruments, names)


RAW: RawTable[Walk] = RawTable(
    SOURCE,
    "futures",
    ("venue", "instrument_key", "month"),
    "coin-months",
    also_replace=_coin_months,
    reference_of=_reference,
    names=names,
)
