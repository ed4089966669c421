"""Synthetic 1-minute ``derivative_price`` months in Aperiodic's file layout (one row group per file,
as the vendor writes them), generated once with DuckDB and cached under ``bench/.data/``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

DATA = Path(__file__).resolve().parent / ".data"
EXCHANGE = "binance-futures"
SYMBOLS = {
    "perpetual-BTC-USDT:USDT": 60000.0,
    "perpetual-ETH-USDT:USDT": 3000.0,
    "perpetual-SOL-USDT:USDT": 150.0,
    "perpetual-XRP-USDT:USDT": 0.6,
}
LAST_MONTH = date(2025, 12, 1)

MONTH_SQL = """
copy (
    with minutes as (
        select range as time, epoch(range) / 60 as n
        from range($start::timestamp, $end::timestamp, interval 1 minute)
    ),
    prices as (
        select
            time,
            $base * (1 + 0.2 * sin(n / 9000.0) + 0.002 * sin(n / 7.0)) as mark_price,
            $base * (1 + 0.2 * sin(n / 9000.0) + 0.002 * sin(n / 7.0)) * (1 + 0.0002 * cos(n / 11.0)) as last_price,
            $base * (1 + 0.2 * sin((n - 1) / 9000.0) + 0.002 * sin((n - 1) / 7.0)) as mark_open
        from minutes
    )
    select
        time,
        last_price,
        mark_price * (1 - 0.0001) as index_price,
        mark_price,
        (last_price / mark_open - 1) * 100 as last_price_pct_change,
        (mark_price / mark_open - 1) * 100 as index_price_pct_change,
        (mark_price / mark_open - 1) * 100 as mark_price_pct_change,
        1.0 as mark_index_pct_change_ratio,
        (mark_price / mark_open - 1) / nullif(last_price / mark_open - 1, 0) as mark_last_pct_change_ratio,
        (mark_price / mark_open - 1) / nullif(last_price / mark_open - 1, 0) as index_last_pct_change_ratio
    from prices
    order by time
) to '{path}' (format parquet, compression zstd, row_group_size 1000000)
"""


def months_back(n: int) -> list[date]:
    out, m = [], LAST_MONTH
    for _ in range(n):
        out.append(m)
        m = date(m.year - (m.month == 1), (m.month - 2) % 12 + 1, 1)
    return sorted(out)


def month_file(symbol: str, month: date) -> Path:
    """Where the emulator's prebuilt store keeps the object (see Emulator(aperiodic_files=...))."""
    return DATA / "aperiodic" / EXCHANGE / "1m" / "exchange" / symbol / f"{month:%Y-%m}.parquet"


def ensure_months(n: int) -> list[Path]:
    """The last ``n`` months for the four symbols, generated if missing; returns every file."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    files = []
    for symbol, base in SYMBOLS.items():
        for m in months_back(n):
            path = month_file(symbol, m)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                end = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
                con.execute(MONTH_SQL.format(path=path), {"start": m, "end": end, "base": base})
            files.append(path)
    con.close()
    return files
