"""The vendor's own client (``aperiodic`` 4.3.1) against the emulator.

Expected values come from the shipped real sample (read here with DuckDB), from the data README,
or from counting by hand; never from the emulator's own answer.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aperiodic
import duckdb
import polars as pl
import pytest
from aperiodic import AperiodicDataError, DownloadError

import pipelines.emulator.market_data as md
from pipelines.emulator import Emulator, derivative_price_table

SAMPLE_1H = Path(md.__file__).parent / "data" / "binance_usdm_1h.parquet"
SAMPLE_FUNDING = Path(md.__file__).parent / "data" / "binance_usdm_funding.parquet"
BTC = "perpetual-BTC-USDT:USDT"
ETH = "perpetual-ETH-USDT:USDT"


def fetch(emu: Emulator, *, symbol: str = BTC, interval: str = "1h", **kwargs: object) -> pl.DataFrame:
    params: dict[str, object] = {
        "api_key": emu.api_key,
        "metric": "derivative_price",
        "timestamp": "exchange",
        "interval": interval,
        "exchange": "binance-futures",
        "symbol": symbol,
        "base_url": emu.base_url("aperiodic"),
        "show_progress": False,
    }
    params.update(kwargs)
    return aperiodic.get_derivative_metrics(**params)


def from_sample(sample: Path, columns: str, time_column: str, symbol: str, at: str) -> tuple[Any, ...]:
    """``columns`` of the one row of ``symbol`` at ``at`` (UTC), read straight from a shipped sample."""
    row = (
        duckdb.connect()
        .execute(
            f"SELECT {columns} FROM read_parquet(?) WHERE symbol = ? AND {time_column} = CAST(? AS TIMESTAMPTZ)",
            [str(sample), symbol, at + "+00"],
        )
        .fetchone()
    )
    assert row is not None
    return row


def sample_row(symbol: str, hour: str) -> tuple[float, float, float, float]:
    """(last_open, last_close, mark_open, mark_close) of one real hour, read straight from the sample."""
    last_open, last_close, mark_open, mark_close = from_sample(
        SAMPLE_1H, "last_open, last_close, mark_open, mark_close", "open_time", symbol, hour
    )
    return last_open, last_close, mark_open, mark_close


def funding_rate(symbol: str, at: str) -> float:
    return float(from_sample(SAMPLE_FUNDING, "last_funding_rate", "calc_time", symbol, at)[0])


def test_month_boundary_and_daily_cutover_match_served_rows(emu: Emulator) -> None:
    df = fetch(emu, start_date=date(2026, 4, 20), end_date=date(2026, 5, 5))

    assert df.height == 16 * 24  # 2026-04-20 .. 2026-05-05 inclusive, every hour present
    assert df.schema["time"] == pl.Datetime("us", None)
    assert df["time"].min() == datetime(2026, 4, 20, 0)
    assert df["time"].max() == datetime(2026, 5, 5, 23)
    assert df["time"].is_sorted()

    expected = derivative_price_table(
        "binance-futures", BTC, "1h", "exchange", datetime(2026, 4, 20), datetime(2026, 5, 6)
    )
    assert df.equals(pl.from_arrow(expected))  # type: ignore[arg-type]

    # One monthly object for April, one daily object per May day (today = 2026-05-17).
    files = [r.path for r in emu.requests if r.path.startswith("/files/")]
    assert sorted(p.split("?")[0].split("/")[-1].split(".")[0] for p in files) == ["2026-04"] + [
        f"2026-05-{d:02d}" for d in range(1, 6)
    ]


def test_known_real_price_btc_ath_hour(emu: Emulator) -> None:
    df = fetch(emu, start_date=date(2024, 3, 14), end_date=date(2024, 3, 14))
    assert df.height == 24
    row = df.filter(pl.col("time") == datetime(2024, 3, 14, 0))
    assert row["last_price"].item() == 72900.0  # hourly close in the data README


def test_mark_and_index_against_sample_by_hand(emu: Emulator) -> None:
    df = fetch(emu, symbol=ETH, start_date=date(2025, 11, 3), end_date=date(2025, 11, 3))
    row = df.filter(pl.col("time") == datetime(2025, 11, 3, 13)).row(0, named=True)

    last_open, last_close, mark_open, mark_close = sample_row("ETHUSDT", "2025-11-03 13:00:00")
    assert row["mark_price"] == mark_close
    assert row["last_price"] == last_close

    # Funding events at 08:00 and 16:00; premium = rate - 0.0001, linear in between.
    r08 = funding_rate("ETHUSDT", "2025-11-03 08:00:00")
    r16 = funding_rate("ETHUSDT", "2025-11-03 16:00:00")
    p_open = r08 + (r16 - r08) * 5 / 8 - 0.0001  # 13:00
    p_close = r08 + (r16 - r08) * 6 / 8 - 0.0001  # 14:00
    index_first = mark_open / (1 + p_open)
    index_final = mark_close / (1 + p_close)
    assert row["index_price"] == pytest.approx(index_final, rel=1e-12)
    index_pct = (index_final / index_first - 1) * 100
    mark_pct = (mark_close / mark_open - 1) * 100
    last_pct = (last_close / last_open - 1) * 100
    assert row["index_price_pct_change"] == pytest.approx(index_pct, rel=1e-9)
    assert row["mark_price_pct_change"] == pytest.approx(mark_pct, rel=1e-9)
    assert row["last_price_pct_change"] == pytest.approx(last_pct, rel=1e-9)
    assert row["mark_index_pct_change_ratio"] == pytest.approx(mark_pct / index_pct, rel=1e-9)
    assert row["mark_last_pct_change_ratio"] == pytest.approx(mark_pct / last_pct, rel=1e-9)
    assert row["index_last_pct_change_ratio"] == pytest.approx(index_pct / last_pct, rel=1e-9)


def test_true_timestamp_serves_same_rows(emu: Emulator) -> None:
    a = fetch(emu, timestamp="exchange", start_date=date(2025, 2, 27), end_date=date(2025, 3, 2))
    b = fetch(emu, timestamp="true", start_date=date(2025, 2, 27), end_date=date(2025, 3, 2))
    assert a.height == 4 * 24
    assert a.equals(b)


def test_preview_without_key(emu: Emulator) -> None:
    df = fetch(
        emu,
        symbol=ETH,
        api_key=None,
        preview=True,
        start_date=date(2025, 6, 25),
        end_date=date(2025, 7, 5),
    )
    # Only June is in the preview slice: 25..30 June = 6 days.
    assert df.height == 6 * 24
    assert df["time"].max() == datetime(2025, 6, 30, 23)
    assert all(r.status == 200 for r in emu.requests)
    listing = [r for r in emu.requests if r.path.startswith("/api/v1/data/preview/")]
    assert len(listing) == 1

    outside = fetch(emu, api_key=None, preview=True, start_date=date(2024, 1, 1), end_date=date(2024, 1, 31))
    assert outside.height == 0


def test_survives_one_429_with_retry_after(emu: Emulator) -> None:
    emu.faults.inject("status", target="list", status=429, retry_after=1)
    started = time.monotonic()
    df = fetch(emu, start_date=date(2025, 1, 1), end_date=date(2025, 1, 1))
    assert time.monotonic() - started >= 0.9  # it honoured Retry-After: 1
    assert df.height == 24
    listing = [r.status for r in emu.requests if r.path.startswith("/api/v1/")]
    assert listing == [429, 200]


def test_expired_url_surfaces_as_403_download_error(emu: Emulator) -> None:
    emu.faults.inject("expired_url")
    with pytest.raises(DownloadError) as info:
        fetch(emu, start_date=date(2025, 1, 1), end_date=date(2025, 1, 1))
    assert info.value.status_code == 403


def test_schema_drift_is_reported_with_the_file_named(emu: Emulator) -> None:
    emu.faults.inject("drift_columns", match="2025-02")
    with pytest.raises(AperiodicDataError, match="2025-02"):
        fetch(emu, start_date=date(2025, 1, 30), end_date=date(2025, 2, 2))


def test_survives_a_dropped_download(emu: Emulator) -> None:
    emu.faults.inject("drop_connection", target="file")
    df = fetch(emu, start_date=date(2025, 3, 1), end_date=date(2025, 3, 1))
    assert df.height == 24
    downloads = [r for r in emu.requests if r.path.startswith("/files/")]
    assert len(downloads) == 2  # the dropped one, then the retry


def test_symbols_endpoint_via_client(emu: Emulator) -> None:
    symbols = aperiodic.get_symbols(emu.api_key, "binance-futures", base_url=emu.base_url("aperiodic"))
    assert set(symbols) == {BTC, ETH}
