"""CayøLargo's part of a load: one time-window walk per coin-month (or instrument-month), each page
validated as it arrives (tiers: README.md here). Unlisted fields are ignored, so an additive vendor
change does not stop a load; a batch writes the instruments met in its data to the ref tables."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from functools import partial
from typing import Any, NamedTuple, Unpack

import dagster as dg
import duckdb
import pandera.polars as pa
import polars as pl
import pyarrow

from pipelines.months import month_bounds
from pipelines.reference import Reference, VendorName
from pipelines.sources import loader
from pipelines.sources.cayolargo.client import CayoLargoClient
from pipelines.sources.cayolargo.source import (
    CONTRACT_TYPES,
    SOURCE,
    VENDOR,
    VENUE,
    MappingError,
    from_deribit,
    to_deribit,
)
from pipelines.sources.loader import Count, LoadReport, Options, Partition, RawTable, Staged, run
from pipelines.sources.source import Loaded, LoadRequest
from pipelines.universe.instruments import UniverseInstrument
from pipelines.validation import validated, value_problem
from pipelines.warehouse.lake import Warehouse, registered_tables

log = logging.getLogger("markhouse.cayolargo")

# perpetual-only (funding) and ``alpha``-tier fields, null when absent; every other one must be sent
OPTIONAL = ("funding_rate", "funding_8h", "estimated_delivery_price")
_SNAPSHOT_US = 600 * 1_000_000

# each number field's check ("> 0", ">= 0" or none) and whether it may be null, in the order sent
_NUMBER_FIELDS = {
    **dict.fromkeys(("contract_size", "mark_price", "index_price"), ("gt", False)),
    "open_interest": ("ge", False),
    **dict.fromkeys(("bid_price", "ask_price"), ("gt", True)),
    **dict.fromkeys(("best_bid_amount", "best_ask_amount"), ("ge", True)),
    "last_price": ("gt", True),
    **dict.fromkeys(("funding_rate", "funding_8h"), ("", True)),
    "estimated_delivery_price": ("gt", True),
}
# every numeric field, in the order checked: finite where present (NaN or inf would reach prices and carry)
NUMBERS = (*_NUMBER_FIELDS, "funding_interval_hours")
ROW_SCHEMA = pyarrow.schema(  # one validated page as the loader stages it (ts: the vendor's timestamp)
    [(n, pyarrow.string()) for n in ("venue", "instrument_key", "coin", "instrument_id", "contract_type")]
    + [(n, pyarrow.timestamp("us", tz="UTC")) for n in ("ts", "expiration_timestamp")]
    + [(n, pyarrow.float64()) for n in NUMBERS]
)
STAGED_SCHEMA = ROW_SCHEMA.append(pyarrow.field("month", pyarrow.date32()))  # a walk's rows, with its month


class PageValidationError(ValueError):
    """A page of rows is not valid CayøLargo futures data; the message names the page and field."""


def page_schema(coin: str) -> pa.DataFrameSchema:
    utc = pl.Datetime("us", "UTC")
    on_snapshot = pa.Check(
        lambda d: d.lazyframe.select(pl.col(d.key).dt.epoch("us") % _SNAPSHOT_US == 0),
        element_wise=False,
        error="on a 10-minute boundary",
    )
    columns = {
        "timestamp": pa.Column(utc, on_snapshot, nullable=False),
        "coin": pa.Column(pl.Utf8, pa.Check.isin([coin]), nullable=False),
        "instrument_id": pa.Column(pl.Utf8, nullable=False),
        "contract_type": pa.Column(pl.Utf8, pa.Check.isin(list(CONTRACT_TYPES)), nullable=False),
        "expiration_timestamp": pa.Column(utc, nullable=False),
    }
    for name, (check, nullable) in _NUMBER_FIELDS.items():
        bound = {"gt": pa.Check.gt(0), "ge": pa.Check.ge(0)}.get(check)
        columns[name] = pa.Column(pl.Float64, bound, nullable=nullable)
    return pa.DataFrameSchema(
        columns, strict=True, coerce=True, unique=["timestamp", "instrument_id"], name="cayolargo futures"
    )


def validate_page(rows: list[dict[str, Any]], label: str, coin: str, window_from: datetime) -> pyarrow.Table:
    """One page as ``ROW_SCHEMA``; rows before ``window_from`` or out of order would break the paging."""
    if not rows:
        return ROW_SCHEMA.empty_table()
    try:
        table = pyarrow.Table.from_struct_array(pyarrow.array(rows))
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError) as exc:
        raise PageValidationError(f"{label}: a field mixes value types: {exc}") from None
    frame = pl.DataFrame(table)
    schema = page_schema(coin)
    if missing := [f for f in schema.columns if f not in frame.columns and f not in OPTIONAL]:
        raise PageValidationError(f"{label}: required field(s) missing: {', '.join(missing)}")
    frame = frame.select(
        [pl.col(f) if f in frame.columns else pl.lit(None, pl.Float64).alias(f) for f in schema.columns]
    )
    for name in ("timestamp", "expiration_timestamp"):
        if frame.schema[name] != pl.Utf8:
            raise PageValidationError(f"{label}: field {name} must be an ISO 8601 string")
        try:
            frame = frame.with_columns(pl.col(name).str.to_datetime(time_unit="us", time_zone="UTC"))
        except pl.exceptions.PolarsError as exc:
            raise PageValidationError(f"{label}: field {name} is not ISO 8601: {exc}") from None
    if problem := value_problem(frame, NUMBERS, "timestamp", identify=("instrument_id",)):
        raise PageValidationError(f"{label}: {problem}")
    frame = validated(schema, frame, label, PageValidationError)
    ts = frame["timestamp"]
    if not ts.is_sorted():
        raise PageValidationError(f"{label}: rows are not ordered by timestamp (time-window paging needs it)")
    if ts.min() < window_from:  # type: ignore[operator]
        raise PageValidationError(f"{label}: rows before the requested from={window_from.isoformat()}")
    return _to_rows(frame, label)


def _to_rows(frame: pl.DataFrame, label: str) -> pyarrow.Table:
    """Venue, Atlas key and funding interval from the mapping, per distinct id rather than per row."""
    try:
        mapped = {iid: from_deribit(iid) for iid in frame["instrument_id"].unique().to_list()}
    except MappingError as exc:
        raise PageValidationError(f"{label}: {exc}") from None

    def per_id(field: str, dtype: type[pl.DataType]) -> pl.Expr:
        values = {iid: getattr(inst, field) for iid, inst in mapped.items()}
        return pl.col("instrument_id").replace_strict(values, return_dtype=dtype)

    frame = frame.with_columns(
        pl.lit(VENUE).alias("venue"),
        per_id("instrument_key", pl.Utf8).alias("instrument_key"),
        per_id("funding_interval_hours", pl.Float64).alias("funding_interval_hours"),
    )
    sent = frame.select("instrument_id", "contract_type", pl.col("expiration_timestamp").dt.date())
    for iid, contract_type, expiry in sent.unique(maintain_order=True).rows():  # as the id's name says
        if contract_type != (named := mapped[iid].contract_type):
            raise PageValidationError(
                f"{label}: {iid} has contract_type {contract_type}, but its name says {named}"
            )
        if (expires := mapped[iid].instrument.expiry) is not None and expires.date() != expiry:
            raise PageValidationError(f"{label}: {iid} expires {expiry}, but its name says {expires.date()}")
    return frame.rename({"timestamp": "ts"}).select(ROW_SCHEMA.names).to_arrow().cast(ROW_SCHEMA)


class Walk(NamedTuple):
    coin: str
    month: date
    instrument_id: str | None = None


def names(walk: Walk) -> tuple[str, list[str]]:
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
    shown = {"pages": "pages", "walks_without_rows": "skipped"}
    return loader.load(
        request, load_months, coins, shown, instruments=request.instruments, must_have_rows=False
    )


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
    parts: list[pyarrow.Table] = []
    for page in client.pages(walk.coin, start, end, walk.instrument_id):
        where = f"{label} page {page.number} (from={page.window_from})"
        parts.append(validate_page(page.rows, where, walk.coin, datetime.fromisoformat(page.window_from)))
        count(len(page.rows))
    frame = pl.DataFrame(pyarrow.concat_tables(parts) if parts else ROW_SCHEMA.empty_table())
    frame = frame.filter(pl.col("ts") < end)  # a vendor treating `to` loosely
    dup = frame.select("ts", "instrument_id").is_duplicated()
    if dup.any():
        row = frame.filter(dup).row(0, named=True)
        raise PageValidationError(
            f"{label}: {row['instrument_id']} at {row['ts']:%Y-%m-%d %H:%M} arrived twice across pages"
        )
    rows = frame.with_columns(month=pl.lit(walk.month)).to_arrow().cast(STAGED_SCHEMA)
    counts = frame.group_by("venue", "instrument_key").len().sort("instrument_key").iter_rows()
    partitions = [Partition(v, k, "exchange", "10m", walk.month, n, len(parts)) for v, k, n in counts]
    return Staged(walk, label, partitions, rows, pages=len(parts))


def _coin_months(con: duckdb.DuckDBPyConnection, staged: list[Staged[Walk]]) -> pyarrow.Table:
    whole = {(s.unit.coin, s.unit.month) for s in staged if s.unit.instrument_id is None}
    walked = pyarrow.table({"coin": [c for c, _ in whole], "month": [m for _, m in whole]})
    with registered_tables(con, {"walked": walked}):
        return con.execute(SOURCE.load_sql("coin_months")).to_arrow_table()


def _reference(rows: pyarrow.Table) -> Reference:
    """Instruments met in the data, with the vendor's exact expiry and contract size (one per key)."""
    per_key = (
        pl.DataFrame(rows)
        .group_by("instrument_key")
        .agg(
            pl.col("venue", "instrument_id", "contract_type").first(),
            pl.col("expiration_timestamp", "contract_size").sort_by("ts").last(),
        )
    )
    instruments: list[UniverseInstrument] = []
    names: list[VendorName] = []
    for _, venue, iid, contract_type, expiry, size in per_key.sort("instrument_key").iter_rows():
        deribit = from_deribit(iid)
        inst = deribit.instrument  # a future's exact expiry (Deribit: 08:00 UTC), not the key's midnight
        inst = replace(inst, expiry=expiry) if inst.kind == "future" else inst
        instruments.append(UniverseInstrument(venue, inst, size, deribit.funding_interval_hours))
        names.append(VendorName(VENDOR, venue, contract_type, iid, venue, inst.instrument_key))
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
