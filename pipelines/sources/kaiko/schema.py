"""The contract one Kaiko instrument-month must meet. Kaiko may repeat a row at a page boundary:
identical repeats are dropped, two different rows for one timestamp fail the unique ``ts``."""

from __future__ import annotations

from datetime import datetime

import pandera.polars as pa
import polars as pl
import pyarrow
from pandera.errors import SchemaError, SchemaErrors

from pipelines.validation import summarize_schema_errors

PRICE_COLUMNS = ("last_price", "index_price", "mark_price")


class MonthValidationError(ValueError):
    """An instrument-month that is not valid Kaiko price data; the message names it."""


def month_schema(period_start: datetime, period_end: datetime) -> pa.DataFrameSchema:
    """Schema for the rows of [period_start, period_end) (aware UTC datetimes)."""
    columns: dict[str, pa.Column] = {
        "ts": pa.Column(
            pl.Datetime("ms", "UTC"),
            checks=[pa.Check.ge(period_start), pa.Check.lt(period_end)],
            nullable=False,
            unique=True,
        ),
    }
    for name in PRICE_COLUMNS:
        columns[name] = pa.Column(pl.Float64, checks=pa.Check.gt(0), nullable=True)
    return pa.DataFrameSchema(columns, strict=True, name="kaiko derivatives.v2/price")


def validate_month(
    rows: pyarrow.Table, label: str, period_start: datetime, period_end: datetime
) -> tuple[pyarrow.Table, int]:
    """De-duplicate identical repeated rows and validate; returns (rows sorted by ts, duplicates dropped)."""
    frame = pl.DataFrame(rows)
    unique = frame.unique(maintain_order=False).sort("ts")
    try:
        month_schema(period_start, period_end).validate(unique, lazy=True)
    except (SchemaError, SchemaErrors) as exc:
        raise MonthValidationError(f"{label}: {summarize_schema_errors(exc)}") from None
    return unique.to_arrow(), frame.height - unique.height
