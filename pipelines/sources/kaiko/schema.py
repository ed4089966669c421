"""The contract one Kaiko instrument-month must meet. Kaiko may repeat a row at a page boundary:
identical repeats are dropped, two different rows for one timestamp fail the unique ``ts``."""

from __future__ import annotations

from datetime import datetime

import pandera.polars as pa
import polars as pl
import pyarrow

from pipelines.validation import period_column, validated

PRICE_COLUMNS = ("last_price", "index_price", "mark_price")


class MonthValidationError(ValueError):
    """An instrument-month that is not valid Kaiko price data; the message names it."""


def month_schema(period_start: datetime, period_end: datetime) -> pa.DataFrameSchema:
    """Schema for the rows of [period_start, period_end) (aware UTC datetimes)."""
    columns = {"ts": period_column(pl.Datetime("ms", "UTC"), period_start, period_end)}
    for name in PRICE_COLUMNS:
        columns[name] = pa.Column(pl.Float64, checks=pa.Check.gt(0), nullable=True)
    return pa.DataFrameSchema(columns, strict=True, name="kaiko derivatives.v2/price")


def validate_month(
    rows: pyarrow.Table, label: str, period_start: datetime, period_end: datetime
) -> tuple[pyarrow.Table, int]:
    """De-duplicate identical repeated rows and validate; returns (rows sorted by ts, duplicates dropped)."""
    frame = pl.DataFrame(rows)
    unique = frame.unique(maintain_order=False).sort("ts")
    validated(month_schema(period_start, period_end), unique, label, MonthValidationError)
    return unique.to_arrow(), frame.height - unique.height
