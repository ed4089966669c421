"""One way to turn pandera's failure report into a message a person can act on, for every source."""

from __future__ import annotations

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
