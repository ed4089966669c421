"""Validation failures as messages a person can act on, for every source."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from pipelines.settings import plausible_range


def validated(
    schema: pa.DataFrameSchema, frame: pl.DataFrame, label: str, error: type[Exception], limit: int = 5
) -> pl.DataFrame:
    """``frame`` as ``schema`` makes it, or the first few distinct failures, each with an example."""
    try:
        return schema.validate(frame, lazy=True)
    except (SchemaError, SchemaErrors) as exc:
        cases = exc.failure_cases if isinstance(exc, SchemaErrors) else None
        if not isinstance(cases, pl.DataFrame) or not cases.height:
            raise error(f"{label}: failed validation: {exc}") from None
        problems = [
            f"required field {r['column']} is missing or null"
            if str(r["check"]) == "not_nullable"
            else f"{r['column']}: {r['check']} (e.g. {r['failure_case']})"
            for r in cases.unique(subset=["column", "check"], keep="first").head(limit).iter_rows(named=True)
        ]
        raise error(f"{label}: failed validation: {'; '.join(problems)}") from None


def period_column(dtype: Any, start: datetime, end: datetime) -> pa.Column:
    """The time column of one unit of [start, end): present, in the period, each time once."""
    return pa.Column(dtype, checks=[pa.Check.ge(start), pa.Check.lt(end)], nullable=False, unique=True)


def field_of(column: str) -> str:
    """The plausibility field (``settings.PLAUSIBLE``) a vendor's column is checked against, if any."""
    if column.endswith("_price"):
        return "price"
    if column.startswith(("funding", "predicted_funding")):
        return "funding_rate"
    return "open_interest" if column == "open_interest" else ""


def value_problem(
    frame: pl.DataFrame, columns: Sequence[str], time_column: str, identify: Sequence[str] = ()
) -> str | None:
    """The first non-finite or implausible value, and where: pandera's ``Check.gt(0)`` lets NaN, +inf
    and 1e-320 through, and a mark of 1e-320 once published ``mark_return_pct = inf``."""
    for name in (c for c in columns if c in frame.columns):
        value = pl.col(name).cast(pl.Float64, strict=False)
        field = field_of(name)
        low, high = plausible_range(field) if field else (-math.inf, math.inf)
        bad = frame.filter(value.is_nan() | value.is_infinite() | (value < low) | (value > high))
        if bad.height:
            first = bad.sort(time_column).row(0, named=True)
            number = float(first[name])
            where = "".join(f" {c} {first[c]}" for c in identify)
            more = f" (and {bad.height - 1} more row(s))" if bad.height > 1 else ""
            at = f"at {time_column} {first[time_column]}{where}{more}"
            if math.isfinite(number):
                return (
                    f"{name} is {number!r} {at}: outside the plausible range of a {field.replace('_', ' ')}, "
                    f"{low:g} .. {high:g} (MARKHOUSE_PLAUSIBLE_{field.upper()})"
                )
            shown = "NaN" if math.isnan(number) else ("+inf" if number > 0 else "-inf")
            return f"{name} is {shown} {at}: non-finite values are refused"
    return None
