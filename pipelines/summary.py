"""The short summary printed after a backfill: rows per vendor, instrument and month."""

from __future__ import annotations

from pathlib import Path

from pipelines.storage import Warehouse

SUMMARY_SQL = """
select vendor, instrument_key, timestamp_type, interval, strftime(date_trunc('month', ts), '%Y-%m') as month,
       count(*) as rows, min(ts) as first_ts, max(ts) as last_ts
from marts.fct_price_interval
where interval = source_interval
group by all
order by all
"""


def print_summary(path: Path) -> None:
    """Natively loaded rows only (rollups are derived from them)."""
    with Warehouse(path).reader() as con:
        rows = con.execute(SUMMARY_SQL).fetchall()
    print(f"\nwarehouse: {path}")
    print(
        f"{'vendor':<10} {'instrument':<28} {'ts type':<8} {'int':<4} {'month':<8} {'rows':>7}  first .. last (UTC)"
    )
    for vendor, key, ts_type, interval, month, n, first, last in rows:
        print(
            f"{vendor:<10} {key:<28} {ts_type:<8} {interval:<4} {month:<8} {n:>7}  "
            f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}"
        )
