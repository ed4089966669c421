"""The contract a downloaded Aperiodic file must meet, per metric, in the layouts the vendor's
catalog publishes (``../shared/vendor-docs/aperiodic-derivatives-catalog.md``; README.md here).
Columns are read by name: the contract's columns are required, the other published ones are
optional (a file without one loads it as NULL), and a column the vendor adds later is dropped
from the staged file and named in a warning, never a failed run. The derived statistics may be
non-finite: they load as NULL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import pandera.polars as pa
import polars as pl

from pipelines.validation import period_column, validated, value_problem

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

FUNDING_COLUMNS = (
    "funding_rate",
    "predicted_funding_rate",
    "predicted_funding_rate_spread",
    "predicted_funding_rate_spread_bps",
    "predicted_funding_rate_spread_mean",
    "predicted_funding_rate_std",
    "predicted_funding_rate_spread_bps_std",
    "funding_rate_update_frequency",
    "funding_rate_avg_update_interval",
    "predicted_funding_rate_update_frequency",
)
OPEN_INTEREST_COLUMNS = (
    "open_interest",
    "open_interest_pct_change",
    "open_interest_volatility",
    "oi_price_change_ratio",
)
BASIS_COLUMNS = (
    "basis",
    "basis_bps",
    "mark_price_spread",
    "mark_price_spread_bps",
    "basis_mean",
    "basis_bps_std",
    "mark_price_spread_mean",
    "mark_price_spread_bps_std",
)
METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "derivative_price": COLUMNS,
    "funding": (TIME_COLUMN, *FUNDING_COLUMNS),
    "open_interest": (TIME_COLUMN, *OPEN_INTEREST_COLUMNS),
    "basis": (TIME_COLUMN, *BASIS_COLUMNS),
}
"""Each metric's published columns (their order in a file does not matter)."""

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "derivative_price": COLUMNS,
    "funding": (TIME_COLUMN, "funding_rate"),
    "open_interest": (TIME_COLUMN, "open_interest"),
    "basis": (TIME_COLUMN, "basis"),
}
"""The columns the contract needs: a file without one fails, naming the file and the columns."""

FINITE_COLUMNS: dict[str, tuple[str, ...]] = {
    "derivative_price": PRICE_COLUMNS,
    "funding": ("funding_rate", "predicted_funding_rate"),
    "open_interest": ("open_interest",),
    "basis": ("basis",),
}
"""Columns where NaN or +-inf is a defect of the file (rejected, nothing written)."""

_CHECKS = {**dict.fromkeys(PRICE_COLUMNS, pa.Check.gt(0)), "open_interest": pa.Check.ge(0)}


class FileValidationError(ValueError):
    """A downloaded file is not a valid file of its metric; the message names the file."""


def file_schema(
    period_start: datetime, period_end: datetime, metric: str, present: Iterable[str]
) -> pa.DataFrameSchema:
    """Schema for one file of ``metric`` covering [period_start, period_end) (naive UTC datetimes),
    over the published columns it holds."""
    columns = {TIME_COLUMN: period_column(pl.Datetime("us"), period_start, period_end)}
    for name in present:
        if name != TIME_COLUMN:
            columns[name] = pa.Column(pl.Float64, checks=_CHECKS.get(name), nullable=name != "funding_rate")
    return pa.DataFrameSchema(columns, strict=True, coerce=True, name=f"aperiodic {metric}")


def validate_file(
    path: Path, label: str, period_start: datetime, period_end: datetime, metric: str = "derivative_price"
) -> tuple[int, list[str]]:
    """(rows, columns ignored): a column outside the published layout is dropped from the staged
    file, so the load reads only the raw table's columns."""
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt or non-parquet body
        head = path.read_bytes()[:60]
        hint = (
            " (looks like an HTML page)" if head.lstrip().lower().startswith((b"<!doctype", b"<html")) else ""
        )
        raise FileValidationError(f"{label}: not a readable parquet file{hint}: {exc}") from None
    published = METRIC_COLUMNS[metric]
    unexpected = sorted(set(frame.columns) - set(published))
    missing = sorted(set(REQUIRED_COLUMNS[metric]) - set(frame.columns))
    if missing:
        raise FileValidationError(
            f"{label}: schema drift: unexpected columns {unexpected or 'none'}, missing {missing}"
        )
    time_dtype = frame.schema[TIME_COLUMN]
    if isinstance(time_dtype, pl.Datetime) and time_dtype.time_zone is not None:
        frame = frame.with_columns(pl.col(TIME_COLUMN).dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    # before pandera, whose not-null check counts NaN as null and would hide what is wrong
    problem = value_problem(frame, FINITE_COLUMNS[metric], TIME_COLUMN)
    if problem:
        raise FileValidationError(f"{label} ({path.name}): {problem}")
    frame = frame.drop(unexpected)
    validated(file_schema(period_start, period_end, metric, frame.columns), frame, label, FileValidationError)
    if unexpected:
        frame.write_parquet(path)
    return frame.height, unexpected
