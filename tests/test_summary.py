"""`markhouse summary` keeps venues apart: one Atlas key trades on several venues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.summary import print_summary

BTC = "perpetual-BTC-USDT:USDT"


def hand_built_serving_copy(path: Path) -> None:
    """Three binance-futures hours and two okx-perps hours of the same key; the two vendors agree
    on binance-futures for two hours and on okx-perps for one."""
    con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_price_interval (vendor varchar, venue varchar, instrument_key varchar, "
        "timestamp_type varchar, interval varchar, source_interval varchar, ts timestamptz)"
    )
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for venue, hours in (("binance-futures", 3), ("okx-perps", 2)):
        for h in range(hours):
            con.execute(
                "insert into marts.fct_price_interval values ('aperiodic', ?, ?, 'exchange', '1h', '1h', ?)",
                [venue, BTC, start + timedelta(hours=h)],
            )
    con.execute(
        "create table marts.rpt_vendor_divergence (vendor_a varchar, vendor_b varchar, venue varchar, "
        "instrument_key varchar, interval varchar, ts timestamptz, mark_diff_bps double, last_diff_bps double)"
    )
    for venue, diffs in (("binance-futures", [1.0, 3.0]), ("okx-perps", [10.0])):
        for h, d in enumerate(diffs):
            con.execute(
                "insert into marts.rpt_vendor_divergence values ('aperiodic', 'kaiko', ?, ?, '1h', ?, ?, ?)",
                [venue, BTC, start + timedelta(hours=h), d, -d],
            )
    con.execute(
        "create table marts.fct_carry (vendor varchar, venue varchar, instrument_key varchar, kind varchar, "
        "ts timestamptz, funding_rate double, funding_interval_hours double, funding_annualized_pct double, "
        "predicted_funding_annualized_pct double, funding_interval_source varchar, oi_usd double)"
    )
    con.execute(
        "create table marts.rpt_mark_last_gap (vendor varchar, venue varchar, instrument_key varchar, "
        "interval varchar, ts timestamptz, gap_bps double, episode_intervals integer)"
    )
    con.execute(
        "create table marts.fct_carry_constant_maturity (vendor varchar, venue varchar, coin varchar, "
        "settle varchar, ts timestamptz, annualized_basis_30d_pct double, near_expiry_30d timestamptz, "
        "far_expiry_30d timestamptz)"
    )
    june, september = datetime(2026, 6, 26, 8, tzinfo=UTC), datetime(2026, 9, 25, 8, tzinfo=UTC)
    for row in (
        ("kaiko", "binance-futures", "BTC", "USDT", datetime(2026, 3, 2, 10, tzinfo=UTC), None, None, None),
        ("cayolargo", "deribit", "BTC", "BTC", datetime(2026, 3, 2, 9, tzinfo=UTC), 7.5, june, september),
        ("cayolargo", "deribit", "ETH", "ETH", datetime(2026, 2, 27, 12, tzinfo=UTC), 3.25, june, september),
        ("cayolargo", "deribit", "ETH", "ETH", datetime(2026, 3, 2, 8, tzinfo=UTC), None, None, None),
    ):
        con.execute(
            "insert into marts.fct_carry_constant_maturity values (?, ?, ?, ?, ?, ?, ?, ?)", list(row)
        )
    con.close()


@pytest.fixture
def summary_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What ``print_summary`` prints for the hand-built serving copy, line by line."""
    path = tmp_path / "serving.duckdb"
    hand_built_serving_copy(path)
    print_summary(path)
    return capsys.readouterr().out.splitlines()


def test_the_30_day_constant_maturity_basis_of_today_one_line_per_coin(summary_lines: list[str]) -> None:
    lines = [line.strip() for line in summary_lines]
    coins = [line for line in lines if line.startswith(("BTC ", "ETH "))]
    # BTC: the vendor whose two expiries bracket 30 days today wins over a later unbracketed row
    assert coins[0].split()[:6] == ["BTC", "cayolargo", "deribit", "BTC", "2026-03-02", "09:00"]
    assert coins[0].split()[6:10] == ["7.5", "2026-06-26", "..", "2026-09-25"]
    # ETH: nothing brackets 30 days today; the last value that did is named
    assert "none: no two expiries bracket 30 days" in coins[1]
    assert coins[1].endswith("2026-02-27 12:00 deribit: 3.25")
    assert len(coins) == 2


def test_summary_and_its_divergence_example_keep_venues_apart(summary_lines: list[str]) -> None:
    lines = summary_lines
    rows = [line.split() for line in lines if line.startswith("aperiodic ")]
    assert [(r[1], r[2], r[6]) for r in rows] == [("binance-futures", BTC, "3"), ("okx-perps", BTC, "2")]
    divergence = [line.split() for line in lines if line.strip().startswith("aperiodic  kaiko")]
    # venue, intervals, median |mark diff| (of 1 and 3 = 2.0; of 10 alone = 10.0), max |last diff|
    assert [(d[2], d[5], d[6], d[7]) for d in divergence] == [
        ("binance-futures", "2", "2.0", "3.0"),
        ("okx-perps", "1", "10.0", "10.0"),
    ]


def test_a_routine_refresh_s_summary_names_the_example_queries_without_running_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "serving.duckdb"
    hand_built_serving_copy(path)
    print_summary(path, queries=False)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines if line.startswith("aperiodic ")] == [
        ["aperiodic", "binance-futures", BTC],
        ["aperiodic", "okx-perps", BTC],
    ]
    assert lines[-1] == "example queries with their answers: `markhouse summary`"
    assert not [line for line in lines if "duckdb -readonly" in line]


def test_after_a_backfill_the_summary_lists_only_the_run_s_months(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import date

    path = tmp_path / "serving.duckdb"
    hand_built_serving_copy(path)  # March: 3 binance-futures hours, 2 okx-perps hours
    con = duckdb.connect(str(path))
    april = datetime(2026, 4, 30, 23, tzinfo=UTC)  # the last hour of April, and one in May
    for ts in (april, april + timedelta(hours=1)):
        con.execute(
            "insert into marts.fct_price_interval values ('aperiodic', 'okx-perps', ?, 'exchange', '1h', '1h', ?)",
            [BTC, ts],
        )
    con.close()
    print_summary(path, months=(date(2026, 4, 1), date(2026, 4, 1)))
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("aperiodic ")]
    assert [(r[1], r[5], r[6]) for r in rows] == [("okx-perps", "2026-04", "1")]
    assert "rows of 2026-04 .. 2026-04 (every month: `markhouse summary`)" in out
    print_summary(path, months=(date(2026, 3, 1), date(2026, 5, 1)))
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("aperiodic ")]
    assert [(r[1], r[5], r[6]) for r in rows] == [
        ("binance-futures", "2026-03", "3"),
        ("okx-perps", "2026-03", "2"),
        ("okx-perps", "2026-04", "1"),
        ("okx-perps", "2026-05", "1"),
    ]
    # a filtered backfill's summary: the vendor and instrument it asked for only (issue 26)
    print_summary(path, months=(date(2026, 3, 1), date(2026, 5, 1)), only={"aperiodic": [BTC], "kaiko": []})
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("aperiodic ")]
    assert sorted({(r[1], r[2]) for r in rows}) == sorted(
        {(venue, BTC) for venue in ("binance-futures", "okx-perps")}
    )
    assert f"rows of 2026-03 .. 2026-05 of aperiodic {BTC}, kaiko (all) (every month" in out
    print_summary(path, months=(date(2026, 3, 1), date(2026, 5, 1)), only={"kaiko": []})
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("aperiodic ")]
