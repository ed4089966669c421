"""The summary printed after a backfill, read from the serving copy as a BI tool would."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from pipelines.months import next_month
from pipelines.warehouse.lake import read_sql
from pipelines.warehouse.serving import open_serving


def examples() -> list[tuple[str, str]]:
    """(title, SQL) of each query in ``sql/summary/examples.sql``, titled by the comment above it."""
    examples = []
    for block in read_sql("summary/examples").split(";"):
        lines = block.strip().splitlines()
        sql = "\n".join(line for line in lines if not line.startswith("--"))
        if sql.strip():
            examples.append(([line for line in lines if line.startswith("-- ")][-1][3:], sql))
    return examples


def _table(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    cur = con.execute(sql)
    rows = [[str(v) for v in r] for r in cur.fetchall()]
    if not rows:
        return "  (no rows yet)"
    table = [[d[0] for d in cur.description], *rows]
    widths = [max(map(len, column)) for column in zip(*table, strict=True)]
    return "\n".join(
        "  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in table
    )


def print_summary(
    serving_path: Path,
    *,
    emulator: bool = False,
    months: tuple[date, date] | None = None,
    only: dict[str, list[str]] | None = None,
    queries: bool = True,
) -> None:
    """Natively loaded rows; ``months`` (first, last) and ``only`` (vendor -> keys, none: all) narrow it.
    ``queries``: the example queries too; they read the whole history (0.6 s on 12 months of 1m data),
    which a routine refresh need not pay."""
    with open_serving(serving_path) as con:
        first, after = (months[0], next_month(months[1])) if months else (date.min, date.max)
        rows = con.execute(read_sql("summary/rows"), {"first": first, "after": after}).fetchall()
        if only is not None:
            rows = [r for r in rows if r[0] in only and (not only[r[0]] or r[2] in only[r[0]])]
        print(f"\nserving copy (open this one from BI tools and notebooks): {serving_path}")
        if months is not None:
            which = ", ".join(f"{v} {' '.join(keys) or '(all)'}" for v, keys in (only or {}).items())
            which = f" of {which}" if only is not None else ""
            print(f"rows of {months[0]:%Y-%m} .. {months[1]:%Y-%m}{which} (every month: `markhouse summary`)")
        print(
            f"{'vendor':<10} {'venue':<16} {'instrument':<30} {'ts type':<8} {'int':<4} {'month':<8} {'rows':>7}  first .. last (UTC)"
        )
        for vendor, venue, key, ts_type, interval, month, n, first, last in rows:
            print(
                f"{vendor:<10} {venue:<16} {key:<30} {ts_type:<8} {interval:<4} {month:<8} {n:>7}  "
                f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}"
            )
        if not queries:
            print("\nexample queries with their answers: `markhouse summary`")
        for title, sql in examples() if queries else ():
            print(f'\n{title}\n  duckdb -readonly {serving_path} "{" ".join(sql.split())}"')
            print(_table(con, sql))
            if emulator and "rpt_vendor_divergence" in title:
                print(
                    "  (the embedded emulator serves one market, Binance's, through every vendor, so the\n"
                    "  vendors agree by construction here; against the real vendors this shows how they differ)"
                )
