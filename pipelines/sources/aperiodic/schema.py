"""The contract a downloaded Aperiodic file must meet. The ``funding`` and ``open_interest`` layouts
are assumed (README.md here), so a file that differs fails naming unexpected and missing columns.
The derived pct changes and ratios may be non-finite: they load as NULL."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from pipelines.validation import summarize_schema_errors, value_problem

TIME_COLUMN = "time"
PRICE_COLUMNS = ("last_price", "index_price", "mark_price")
DERIVED_COLUMNS = (
    "last_price_pct_change",
    "index_price_pct_change",
    "mark_price_pct_change",
    "mark_index_pct_change_ratio",
    "mark_last_pct_change_ratio",
    "index_last_pct_change_ratio",
)
COLUMNS = (TIME_COLUMN, *PRICE_COLUMNS, *DERIVED_COLUMNS)

FUNDING_RATE_COLUMN = "funding_rate"
OPEN_INTEREST_COLUMN = "open_interest"
METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "derivative_price": COLUMNS,
    "funding": (TIME_COLUMN, FUNDING_RATE_COLUMN),
    "open_interest": (TIME_COLUMN, OPEN_INTEREST_COLUMN),
}
"""Columns of each metric's files, mapped by name (their order in a file does not matter)."""

FINITE_COLUMNS: dict[str, tuple[str, ...]] = {
    "derivative_price": PRICE_COLUMNS,
    "funding": (FUNDING_RATE_COLUMN,),
    "open_interest": (OPEN_INTEREST_COLUMN,),
}
"""Columns where NaN or +-inf is a defect of the file (rejected, nothing written)."""


class FileValidationError(ValueError):
    """A downloaded file is not a valid derivative_price file; the message names the file."""


def file_schema(
    period_start: datetime, period_end: datetime, metric: str = "derivative_price"
) -> pa.DataFrameSchema:
    """Schema for one file of ``metric`` covering [period_start, period_end) (naive UTC datetimes)."""
    columns: dict[str, pa.Column] = {
        TIME_COLUMN: pa.Column(
            pl.Datetime("us"),
            checks=[pa.Check.ge(period_start), pa.Check.lt(period_end)],
            nullable=False,
            unique=True,
        ),
    }
    if metric == "derivative_price":
        for name in PRICE_COLUMNS:
            columns[name] = pa.Column(pl.Float64, checks=pa.Check.gt(0), nullable=True)
        for name in DERIVED_COLUMNS:
            columns[name] = pa.Column(pl.Float64, nullable=True)
    elif metric == "funding":
        # a row exists because funding settled in the interval: its rate is required (any sign)
        columns[FUNDING_RATE_COLUMN] = pa.Column(pl.Float64, nullable=False)
    elif metric == "open_interest":
        columns[OPEN_INTEREST_COLUMN] = pa.Column(pl.Float64, checks=pa.Check.ge(0), nullable=True)
    else:
        raise ValueError(f"unknown Aperiodic metric {metric!r}; known: {', '.join(METRIC_COLUMNS)}")
    return pa.DataFrameSchema(columns, strict=True, coerce=True, name=f"aperiodic {metric}")


def validate_file(
    path: Path, label: str, period_start: datetime, period_end: datetime, metric: str = "derivative_price"
) -> int:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt or non-parquet body
        head = path.read_bytes()[:60]
        hint = (
            " (looks like an HTML page)" if head.lstrip().lower().startswith((b"<!doctype", b"<html")) else ""
        )
        raise FileValidationError(f"{label}: not a readable parquet file{hint}: {exc}") from None
    found, expected = set(frame.columns), set(METRIC_COLUMNS[metric])
    if found != expected:
        raise FileValidationError(
            f"{label}: schema drift: unexpected columns {sorted(found - expected) or 'none'}, "
            f"missing {sorted(expected - found) or 'none'}"
        )
    time_dtype = frame.schema[TIME_COLUMN]
    if isinstance(time_dtype, pl.Datetime) and time_dtype.time_zone is not None:
        frame = frame.with_columns(pl.col(TIME_COLUMN).dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    # before pandera, whose not-null check counts NaN as null and would hide what is wrong
    problem = value_problem(frame, FINITE_COLUMNS[metric], TIME_COLUMN)
    if problem:
        raise FileValidationError(f"{label} ({path.name}): {problem}")
    try:
        file_schema(period_start, period_end, metric).validate(frame, lazy=True)
    except (SchemaError, SchemaErrors) as exc:
        raise FileValidationError(f"{label}: {summarize_schema_errors(exc)}") from None
    return frame.height
