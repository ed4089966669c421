"""The contract a page of CayøLargo rows must meet (tiers: README.md here). Fields the doc does not
list are ignored, so an additive vendor change does not stop a load. JSON rows go to Arrow (type
inference in C++) then polars, with no per-row Python."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandera.polars as pa
import polars as pl
import pyarrow

from pipelines.sources.cayolargo.mapping import CONTRACT_TYPES, VENUE, MappingError, from_deribit
from pipelines.validation import validated, value_problem

OPTIONAL = ("funding_rate", "funding_8h", "estimated_delivery_price")
"""Perpetual-only (funding) and ``alpha``-tier fields: absent -> null. Every other field of
``page_schema`` must be sent, even where its value may be null (an empty book side, no trade yet)."""
_TIMES = ("timestamp", "expiration_timestamp")
_SNAPSHOT_US = 600 * 1_000_000

NUMBERS = (
    "contract_size",
    "mark_price",
    "index_price",
    "open_interest",
    "bid_price",
    "ask_price",
    "best_bid_amount",
    "best_ask_amount",
    "last_price",
    "funding_rate",
    "funding_8h",
    "estimated_delivery_price",
    "funding_interval_hours",
)
"""Every numeric field, in the order they are checked: finite where present (NaN or inf would
reach prices and carry)."""
ROW_SCHEMA = pyarrow.schema(
    [
        *(
            (name, pyarrow.string())
            for name in ("venue", "instrument_key", "coin", "instrument_id", "contract_type")
        ),
        *((name, pyarrow.timestamp("us", tz="UTC")) for name in ("ts", "expiration_timestamp")),
        *((name, pyarrow.float64()) for name in NUMBERS),
    ]
)
"""One validated page, as the loader stages it (``ts`` = the vendor's ``timestamp``)."""


class PageValidationError(ValueError):
    """A page of rows is not valid CayøLargo futures data; the message names the page and field."""


def page_schema(coin: str) -> pa.DataFrameSchema:
    utc = pl.Datetime("us", "UTC")
    positive = [pa.Check.gt(0)]
    columns: dict[str, pa.Column] = {
        "timestamp": pa.Column(
            utc,
            checks=pa.Check(
                lambda d: d.lazyframe.select(pl.col(d.key).dt.epoch("us") % _SNAPSHOT_US == 0),
                element_wise=False,
                error="on a 10-minute boundary",
            ),
            nullable=False,
        ),
        "coin": pa.Column(pl.Utf8, checks=pa.Check.isin([coin]), nullable=False),
        "instrument_id": pa.Column(pl.Utf8, nullable=False),
        "contract_type": pa.Column(pl.Utf8, checks=pa.Check.isin(list(CONTRACT_TYPES)), nullable=False),
        "expiration_timestamp": pa.Column(utc, nullable=False),
        "contract_size": pa.Column(pl.Float64, checks=positive, nullable=False),
        "mark_price": pa.Column(pl.Float64, checks=positive, nullable=False),
        "index_price": pa.Column(pl.Float64, checks=positive, nullable=False),
        "open_interest": pa.Column(pl.Float64, checks=pa.Check.ge(0), nullable=False),
        "bid_price": pa.Column(pl.Float64, checks=positive, nullable=True),
        "ask_price": pa.Column(pl.Float64, checks=positive, nullable=True),
        "best_bid_amount": pa.Column(pl.Float64, checks=pa.Check.ge(0), nullable=True),
        "best_ask_amount": pa.Column(pl.Float64, checks=pa.Check.ge(0), nullable=True),
        "last_price": pa.Column(pl.Float64, checks=positive, nullable=True),
        "funding_rate": pa.Column(pl.Float64, nullable=True),
        "funding_8h": pa.Column(pl.Float64, nullable=True),
        "estimated_delivery_price": pa.Column(pl.Float64, checks=positive, nullable=True),
    }
    return pa.DataFrameSchema(
        columns,
        strict=True,
        coerce=True,
        unique=["timestamp", "instrument_id"],
        name="cayolargo futures",
    )


def validate_page(rows: list[dict[str, Any]], label: str, coin: str, window_from: datetime) -> pyarrow.Table:
    """One page as ``ROW_SCHEMA``. A row before ``window_from`` (the page's ``from``) or out of
    timestamp order would break time-window paging, so those are errors too."""
    if not rows:
        return ROW_SCHEMA.empty_table()
    try:
        table = pyarrow.Table.from_struct_array(pyarrow.array(rows))
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError) as exc:
        raise PageValidationError(f"{label}: a field mixes value types: {exc}") from None
    frame = pl.DataFrame(table)
    schema = page_schema(coin)
    missing = [f for f in schema.columns if f not in frame.columns and f not in OPTIONAL]
    if missing:
        raise PageValidationError(f"{label}: required field(s) missing: {', '.join(missing)}")
    frame = frame.select(
        [pl.col(f) if f in frame.columns else pl.lit(None, pl.Float64).alias(f) for f in schema.columns]
    )
    for name in _TIMES:
        if frame.schema[name] != pl.Utf8:
            raise PageValidationError(f"{label}: field {name} must be an ISO 8601 string")
        try:
            frame = frame.with_columns(pl.col(name).str.to_datetime(time_unit="us", time_zone="UTC"))
        except pl.exceptions.PolarsError as exc:
            raise PageValidationError(f"{label}: field {name} is not ISO 8601: {exc}") from None
    problem = value_problem(frame, NUMBERS, "timestamp", identify=("instrument_id",))
    if problem:
        raise PageValidationError(f"{label}: {problem}")
    frame = validated(schema, frame, label, PageValidationError)
    ts = frame["timestamp"]
    if not ts.is_sorted():
        raise PageValidationError(f"{label}: rows are not ordered by timestamp (time-window paging needs it)")
    if ts.min() < window_from:  # type: ignore[operator]
        raise PageValidationError(f"{label}: rows before the requested from={window_from.isoformat()}")
    return _to_rows(frame, label)


def _to_rows(frame: pl.DataFrame, label: str) -> pyarrow.Table:
    """Add venue, Atlas key and funding interval from the mapping (per distinct id, not per row)."""
    ids = frame["instrument_id"].unique().to_list()
    keys: dict[str, str] = {}
    kinds: dict[str, str] = {}
    funding_hours: dict[str, float | None] = {}
    for iid in ids:
        try:
            inst = from_deribit(iid)
        except MappingError as exc:
            raise PageValidationError(f"{label}: {exc}") from None
        keys[iid], kinds[iid] = inst.instrument_key, inst.contract_type
        funding_hours[iid] = inst.funding_interval_hours
    frame = frame.with_columns(
        pl.lit(VENUE).alias("venue"),
        pl.col("instrument_id").replace_strict(keys, return_dtype=pl.Utf8).alias("instrument_key"),
        pl.col("instrument_id").replace_strict(kinds, return_dtype=pl.Utf8).alias("expected_type"),
        pl.col("instrument_id")
        .replace_strict(funding_hours, return_dtype=pl.Float64)
        .alias("funding_interval_hours"),
    )
    wrong = frame.filter(pl.col("contract_type") != pl.col("expected_type"))
    if wrong.height:
        row = wrong.row(0, named=True)
        raise PageValidationError(
            f"{label}: {row['instrument_id']} has contract_type {row['contract_type']}, "
            f"but its name says {row['expected_type']}"
        )
    futures = frame.filter(pl.col("expected_type") == "FUTURES")
    expiry_dates = futures.select(pl.col("instrument_id"), pl.col("expiration_timestamp").dt.date()).unique()
    for iid, expiry in expiry_dates.iter_rows():
        named = from_deribit(iid).instrument.expiry
        if named is not None and named.date() != expiry:
            raise PageValidationError(f"{label}: {iid} expires {expiry}, but its name says {named.date()}")
    out = frame.rename({"timestamp": "ts"}).select(ROW_SCHEMA.names).to_arrow()
    return out.cast(ROW_SCHEMA)
