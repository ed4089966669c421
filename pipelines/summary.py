"""The summary printed after a backfill, read from the serving copy as a BI tool would."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from pipelines.months import next_month
from pipelines.warehouse.serving import open_serving

SUMMARY_SQL = """
select vendor, venue, instrument_key, timestamp_type, interval, strftime(date_trunc('month', ts), '%Y-%m') as month,
       count(*) as rows, min(ts) as first_ts, max(ts) as last_ts
from marts.fct_price_interval
where interval = source_interval
group by all
order by all
"""
# a run's months only: the daily refresh of one month then reads one month's files, not the history
RUN_MONTHS_SQL = SUMMARY_SQL.replace(
    "where interval = source_interval",
    "where interval = source_interval and ts >= $first::timestamptz and ts < $after::timestamptz",
)

EXAMPLES = {
    "What do the perpetuals pay? Funding APR per venue (fct_carry)": """
select vendor, venue, instrument_key, count(funding_rate) as funding_obs,
       min(funding_interval_hours) as min_interval_h, max(funding_interval_hours) as max_interval_h,
       round(avg(funding_annualized_pct), 2) as mean_funding_apr_pct,
       round(arg_max(funding_annualized_pct, ts), 2) as last_funding_apr_pct,
       round(arg_max(predicted_funding_annualized_pct, ts), 2) as last_predicted_apr_pct,
       any_value(funding_interval_source) as interval_from,
       round(arg_max(oi_usd, ts) / 1e6, 1) as last_oi_usd_m
from marts.fct_carry
where kind = 'perpetual' and funding_rate is not null
group by all
order by all""",
    "Do the vendors agree? (rpt_vendor_divergence)": """
select vendor_a, vendor_b, venue, instrument_key, interval, count(*) as intervals,
       round(median(abs(mark_diff_bps)), 2) as median_abs_mark_bps,
       round(max(abs(last_diff_bps)), 2) as max_abs_last_bps
from marts.rpt_vendor_divergence
where interval = '1h'
group by all
order by intervals desc, vendor_a, vendor_b, venue, instrument_key, interval
limit 5""",
    "Where is mark far from last? (rpt_mark_last_gap)": """
select vendor, venue, instrument_key, interval, count(*) as intervals_over_threshold,
       max(episode_intervals) as longest_episode, round(max(abs(gap_bps)), 1) as worst_gap_bps
from marts.rpt_mark_last_gap
group by all
order by worst_gap_bps desc, vendor, venue, instrument_key, interval
limit 5""",
}


def _table(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    rows = [[str(v) for v in r] for r in cur.fetchall()]
    if not rows:
        return "  (no rows yet)"
    widths = [max(len(n), *(len(r[i]) for r in rows)) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join("  " + line for line in lines)


def print_summary(
    serving_path: Path, *, emulator: bool = False, months: tuple[date, date] | None = None
) -> None:
    """Natively loaded rows only (rollups are derived from them); ``months`` (first, last): only
    those, as after a backfill of them."""
    with open_serving(serving_path) as con:
        if months is None:
            rows = con.execute(SUMMARY_SQL).fetchall()
        else:
            first, last = months
            rows = con.execute(RUN_MONTHS_SQL, {"first": first, "after": next_month(last)}).fetchall()
        print(f"\nserving copy (open this one from BI tools and notebooks): {serving_path}")
        if months is not None:
            print(f"rows of {months[0]:%Y-%m} .. {months[1]:%Y-%m} (every month: `markhouse summary`)")
        print(
            f"{'vendor':<10} {'venue':<16} {'instrument':<30} {'ts type':<8} {'int':<4} {'month':<8} {'rows':>7}  first .. last (UTC)"
        )
        for vendor, venue, key, ts_type, interval, month, n, first, last in rows:
            print(
                f"{vendor:<10} {venue:<16} {key:<30} {ts_type:<8} {interval:<4} {month:<8} {n:>7}  "
                f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}"
            )
        for title, sql in EXAMPLES.items():
            print(f'\n{title}\n  duckdb -readonly {serving_path} "{" ".join(sql.split())}"')
            print(_table(con, sql))
            if emulator and "rpt_vendor_divergence" in title:
                print(
                    "  (the embedded emulator serves one market, Binance's, through every vendor, so the\n"
                    "  vendors agree by construction here; against the real vendors this shows how they differ)"
                )
