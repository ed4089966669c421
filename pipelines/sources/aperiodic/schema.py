"""The contract a downloaded Aperiodic ``derivative_price`` file must meet before it can touch
the warehouse: exactly the documented columns, float prices that are finite and positive where
present (the vendor's derived pct changes and ratios may be non-finite: they load as NULL), and
a non-null, unique ``time`` inside the period the file was listed for.

Validated with pandera's polars backend: it reads the parquet bytes without pandas, and its
checks cost a fraction of the pandas backend's (see docs/benchmarks.md).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from pipelines.validation import non_finite_problem, summarize_schema_errors

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


class FileValidationError(ValueError):
    """A downloaded file is not a valid derivative_price file; the message names the file."""


def file_schema(period_start: datetime, period_end: datetime) -> pa.DataFrameSchema:
    """Schema for one file covering [period_start, period_end) (naive UTC datetimes)."""
    columns: dict[str, pa.Column] = {
        TIME_COLUMN: pa.Column(
            pl.Datetime("us"),
            checks=[pa.Check.ge(period_start), pa.Check.lt(period_end)],
            nullable=False,
            unique=True,
        ),
    }
    for name in PRICE_COLUMNS:
        columns[name] = pa.Column(pl.Float64, checks=pa.Check.gt(0), nullable=True)
    for name in DERIVED_COLUMNS:
        columns[name] = pa.Column(pl.Float64, nullable=True)
    return pa.DataFrameSchema(columns, strict=True, coerce=True, name="aperiodic derivative_price")


def validate_file(path: Path, label: str, period_start: datetime, period_end: datetime) -> int:
    """Read and validate one downloaded file; returns its row count or raises FileValidationError."""
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt or non-parquet body
        head = path.read_bytes()[:60]
        hint = (
            " (looks like an HTML page)" if head.lstrip().lower().startswith((b"<!doctype", b"<html")) else ""
        )
        raise FileValidationError(f"{label}: not a readable parquet file{hint}: {exc}") from None
    found, expected = set(frame.columns), set(COLUMNS)
    if found != expected:
        raise FileValidationError(
            f"{label}: schema drift: unexpected columns {sorted(found - expected) or 'none'}, "
            f"missing {sorted(expected - found) or 'none'}"
        )
    time_dtype = frame.schema[TIME_COLUMN]
    if isinstance(time_dtype, pl.Datetime) and time_dtype.time_zone is not None:
        frame = frame.with_columns(pl.col(TIME_COLUMN).dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    problem = non_finite_problem(frame, PRICE_COLUMNS, TIME_COLUMN)
    if problem:
        raise FileValidationError(f"{label} ({path.name}): {problem}")
    try:
        file_schema(period_start, period_end).validate(frame, lazy=True)
    except (SchemaError, SchemaErrors) as exc:
        raise FileValidationError(f"{label}: {summarize_schema_errors(exc)}") from None
    return frame.height
