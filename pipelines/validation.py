"""Validation failures as messages a person can act on, for every source."""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl
from pandera.errors import SchemaError, SchemaErrors


def summarize_schema_errors(exc: SchemaError | SchemaErrors, limit: int = 5) -> str:
    """The first few distinct (column, check) failures, each with an example value."""
    if isinstance(exc, SchemaErrors):
        cases = exc.failure_cases
        if isinstance(cases, pl.DataFrame) and cases.height:
            parts = []
            for row in (
                cases.unique(subset=["column", "check"], keep="first").head(limit).iter_rows(named=True)
            ):
                check = str(row["check"])
                if check == "not_nullable":
                    parts.append(f"required field {row['column']} is missing or null")
                else:
                    parts.append(f"{row['column']}: {check} (e.g. {row['failure_case']})")
            return "failed validation: " + "; ".join(parts)
    return f"failed validation: {exc}"


def non_finite_problem(
    frame: pl.DataFrame, columns: Sequence[str], time_column: str, identify: Sequence[str] = ()
) -> str | None:
    """Which column first holds NaN or +/-inf, and where; None if all are finite. pandera's
    ``Check.gt(0)`` lets NaN and +inf through, and one in a price would spread to every return,
    ratio and basis built on it."""
    for name in columns:
        if name not in frame.columns:
            continue
        value = pl.col(name).cast(pl.Float64, strict=False)
        bad = frame.filter(value.is_nan() | value.is_infinite())
        if bad.height:
            first = bad.sort(time_column).row(0, named=True)
            number = float(first[name])
            shown = "NaN" if math.isnan(number) else ("+inf" if number > 0 else "-inf")
            where = "".join(f" {c} {first[c]}" for c in identify)
            more = f" (and {bad.height - 1} more row(s))" if bad.height > 1 else ""
            return f"{name} is {shown} at {time_column} {first[time_column]}{where}{more}: non-finite values are refused"
    return None
