"""One way to turn pandera's failure report into a message a person can act on, for every source."""

from __future__ import annotations

from collections.abc import Iterable

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


def first_non_finite(
    frame: pl.DataFrame, columns: Iterable[str], time_column: str
) -> tuple[str, object] | None:
    """The first column (in ``columns`` order) holding NaN or +-inf, with the ``time_column`` value
    of its first such row; None when every value is finite or null (or the column is not numeric:
    the schema's type check names that). pandera's float checks let inf through and count NaN as
    null, and a NaN would poison every sum and average downstream."""
    for column in columns:
        try:
            values = frame.get_column(column).cast(pl.Float64)
        except pl.exceptions.PolarsError:
            continue  # not numbers at all: the schema's type check names that
        bad = values.is_nan() | values.is_infinite()
        if bad.any():
            return column, frame.get_column(time_column).filter(bad.fill_null(False)).min()
    return None
