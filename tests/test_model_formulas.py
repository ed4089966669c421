"""Formula tests for marts.fct_price_interval on hand-built raw rows, values worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines.models import month_windows, refresh_marts
from pipelines.warehouse.lake import Warehouse, read_sql
from tests.conftest import BTC_1H, by_key_and_ts, insert_rows, mart_rows, one_row

BTC = "perpetual-BTC-USDT:USDT"


def t(day: int, hour: int = 0, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def insert_raw(con, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    insert_rows(con, "raw.aperiodic_derivative_price", rows, **BTC_1H, loaded_at=t(1))


def fetch(con, interval: str, ts: datetime) -> dict:  # type: ignore[no-untyped-def]
    return one_row(
        con, "select * from marts.fct_price_interval where interval = ? and ts = ?", [interval, ts]
    )


def native_1h(con, **vendor_values: float | None) -> dict:  # type: ignore[no-untyped-def]
    """One native 1h row at Jan 4 01:00 (every price 10) with the vendor's own changes and ratios
    ``vendor_values``: its mart row."""
    insert_raw(
        con, [{"ts": t(4, 1), "last_price": 10.0, "index_price": 10.0, "mark_price": 10.0, **vendor_values}]
    )
    refresh_marts(con, [date(2024, 1, 1)])
    return fetch(con, "1h", t(4, 1))


def test_rollup_final_first_to_final_pct_change_and_ratio(warehouse: Warehouse) -> None:
    # four hourly rows 00:00..03:00 -> one 4h row at 00:00
    prices = [  # (last, index, mark)
        (100.0, 200.0, 50.0),
        (110.0, 200.0, 55.0),
        (105.0, 200.0, 52.0),
        (120.0, 200.0, 60.0),
    ]
    with warehouse.writer() as con:
        insert_raw(
            con,
            [
                {"ts": t(2, h), "last_price": p[0], "index_price": p[1], "mark_price": p[2]}
                for h, p in enumerate(prices)
            ],
        )
        refresh_marts(con, [date(2024, 1, 1)])
        row = fetch(con, "4h", t(2, 0))
    assert row["source_interval"] == "1h"
    assert row["n_obs"] == 4
    assert (row["last_price"], row["index_price"], row["mark_price"]) == (120.0, 200.0, 60.0)
    assert row["last_price_pct_change"] == pytest.approx(20.0)  # 100 -> 120
    assert row["mark_price_pct_change"] == pytest.approx(20.0)  # 50 -> 60
    assert row["index_price_pct_change"] == pytest.approx(0.0)  # flat index
    assert row["mark_last_pct_change_ratio"] == pytest.approx(1.0)
    assert row["mark_index_pct_change_ratio"] is None  # zero denominator: null, not inf
    assert row["index_last_pct_change_ratio"] == pytest.approx(0.0)


def test_rollup_through_base_buckets_keeps_the_last_and_first_observed_prices(warehouse: Warehouse) -> None:
    # one hour of 1m rows: last missing for minutes 54..59 (the whole 55m bucket), index missing for
    # minutes 0..6 (the whole 00m bucket and two minutes of the next); 1m rolls up through 5m buckets
    rows = [
        {
            "interval": "1m",
            "ts": t(4, 10, m),
            "last_price": 100.0 + m if m <= 53 else None,
            "index_price": 200.0 + m if m >= 7 else None,
            "mark_price": 50.0 + m / 2,
        }
        for m in range(60)
    ]
    with warehouse.writer() as con:
        insert_raw(con, rows)
        refresh_marts(con, [date(2024, 1, 1)])
        hour = fetch(con, "1h", t(4, 10))
        quarter = fetch(con, "15m", t(4, 10, 45))
        first_five = fetch(con, "5m", t(4, 10))
    assert hour["source_interval"] == "1m" and hour["n_obs"] == 60
    assert (hour["last_price"], hour["index_price"], hour["mark_price"]) == (153.0, 259.0, 79.5)
    assert hour["last_price_pct_change"] == pytest.approx((153 / 100 - 1) * 100)
    assert hour["index_price_pct_change"] == pytest.approx((259 / 207 - 1) * 100)
    assert hour["mark_price_pct_change"] == pytest.approx((79.5 / 50 - 1) * 100)
    assert quarter["last_price"] == 153.0 and quarter["n_obs"] == 15
    assert quarter["last_price_pct_change"] == pytest.approx((153 / 145 - 1) * 100)  # minutes 45..53
    assert first_five["index_price"] is None and first_five["index_price_pct_change"] is None


def test_single_observation_interval_has_null_pct_change(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        insert_raw(con, [{"ts": t(3, 5), "last_price": 10.0, "index_price": 10.0, "mark_price": 10.0}])
        refresh_marts(con, [date(2024, 1, 1)])
        row = fetch(con, "4h", t(3, 4))
    assert row["n_obs"] == 1
    assert row["last_price_pct_change"] is None
    assert row["mark_last_pct_change_ratio"] is None


def test_native_rows_keep_vendor_values(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        row = native_1h(
            con,
            last_price_pct_change=2.0,
            index_price_pct_change=0.0,
            mark_price_pct_change=1.0,
            mark_index_pct_change_ratio=None,
            mark_last_pct_change_ratio=0.5,
            index_last_pct_change_ratio=0.0,
        )
    assert row["source_interval"] == "1h" and row["n_obs"] == 1
    assert row["last_price_pct_change"] == 2.0
    assert row["mark_last_pct_change_ratio"] == 0.5
    assert row["mark_index_pct_change_ratio"] is None


def test_a_ratio_that_overflows_is_null_not_infinite(warehouse: Warehouse) -> None:
    """A vendor's change of 1e-320 (subnormal, finite, not zero) under a change of 1: the quotient
    overflows to +inf in IEEE arithmetic; the mart keeps NULL, as for a zero denominator."""
    assert float("inf") == 1.0 / 1e-320  # what the division itself gives
    with warehouse.writer() as con:
        row = native_1h(
            con, last_price_pct_change=4.0, index_price_pct_change=1e-320, mark_price_pct_change=1.0
        )
    assert row["mark_index_pct_change_ratio"] is None  # 1 / 1e-320
    assert row["mark_last_pct_change_ratio"] == 0.25  # 1 / 4, finite: kept
    assert row["index_last_pct_change_ratio"] == pytest.approx(1e-320 / 4.0, rel=1e-3)


def test_close_to_close_returns_across_month_boundary_and_gap(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        insert_raw(
            con,
            [
                {"ts": t(31, 22), "last_price": 100.0, "index_price": 400.0, "mark_price": 200.0},
                {"ts": t(31, 23), "last_price": 102.0, "index_price": 404.0, "mark_price": 202.0},
                {"ts": t(1, 0, month=2), "last_price": 96.9, "index_price": 404.0, "mark_price": 198.0},
                # 01:00 is missing: the 02:00 return has no immediately preceding interval
                {"ts": t(1, 2, month=2), "last_price": 50.0, "index_price": 50.0, "mark_price": 50.0},
                {"ts": t(1, 3, month=2), "last_price": 55.0, "index_price": 50.0, "mark_price": 60.0},
            ],
        )
        refresh_marts(con, [date(2024, 1, 1), date(2024, 2, 1)])
        jan = fetch(con, "1h", t(31, 23))
        feb = fetch(con, "1h", t(1, 0, month=2))
        gap = fetch(con, "1h", t(1, 2, month=2))
        after = fetch(con, "1h", t(1, 3, month=2))
        first = fetch(con, "1h", t(31, 22))
    assert jan["last_return_pct"] == pytest.approx(2.0)  # 100 -> 102
    assert jan["index_return_pct"] == pytest.approx(1.0)  # 400 -> 404
    assert jan["mark_return_pct"] == pytest.approx(1.0)  # 200 -> 202
    assert jan["mark_last_return_ratio"] == pytest.approx(0.5)
    assert jan["mark_index_return_ratio"] == pytest.approx(1.0)
    # across the month boundary: 102 -> 96.9 is -5 %; 202 -> 198 is -1.980198 %
    assert feb["last_return_pct"] == pytest.approx(-5.0)
    assert feb["mark_return_pct"] == pytest.approx((198 / 202 - 1) * 100)
    assert feb["index_return_pct"] == pytest.approx(0.0)
    assert feb["mark_index_return_ratio"] is None  # zero denominator
    assert gap["last_return_pct"] is None and gap["mark_last_return_ratio"] is None
    assert after["last_return_pct"] == pytest.approx(10.0)
    assert after["mark_return_pct"] == pytest.approx(20.0)
    assert after["mark_last_return_ratio"] == pytest.approx(2.0)
    assert first["last_return_pct"] is None  # nothing before it


def test_rollups_only_to_whole_multiples_of_the_finest_native_series(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        insert_raw(
            con,
            [
                {
                    "ts": t(5, 0, m),
                    "interval": "30m",
                    "last_price": 1.0 + m,
                    "index_price": 1.0,
                    "mark_price": 1.0,
                }
                for m in (0, 30)
            ],
        )
        refresh_marts(con, [date(2024, 1, 1)])
        got = {
            r[0]: r[1]
            for r in con.execute(
                "select interval, source_interval from marts.fct_price_interval group by all"
            ).fetchall()
        }
    assert got == {"30m": "30m", "1h": "30m", "4h": "30m", "1d": "30m"}  # never 1m/5m/10m/15m


def test_daily_rollup_of_a_whole_day(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        insert_raw(
            con,
            [
                {
                    "ts": t(6, 0) + timedelta(hours=h),
                    "last_price": 100.0 + h,
                    "index_price": 1.0,
                    "mark_price": 1.0,
                }
                for h in range(24)
            ],
        )
        refresh_marts(con, [date(2024, 1, 1)])
        day = fetch(con, "1d", t(6))
    assert day["n_obs"] == 24
    assert day["last_price"] == 123.0
    assert day["last_price_pct_change"] == pytest.approx(23.0)  # 100 -> 123


def test_month_reload_rebuilds_only_its_rows_and_the_next_months_first_return(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        insert_raw(
            con,
            [
                {"ts": t(31, 23), "last_price": 100.0, "index_price": 1.0, "mark_price": 1.0},
                {"ts": t(1, 0, month=2), "last_price": 110.0, "index_price": 1.0, "mark_price": 1.0},
                {"ts": t(1, 1, month=2), "last_price": 121.0, "index_price": 1.0, "mark_price": 1.0},
            ],
        )
        refresh_marts(con, [date(2024, 1, 1), date(2024, 2, 1)])
        assert fetch(con, "1h", t(1, 0, month=2))["last_return_pct"] == pytest.approx(10.0)
        # January is reloaded with a new close; only January is refreshed
        con.execute("update raw.aperiodic_derivative_price set last_price = 88.0 where ts = ?", [t(31, 23)])
        # February's second row is changed in raw but February is NOT refreshed: it must stay as built
        con.execute(
            "update raw.aperiodic_derivative_price set last_price = 999.0 where ts = ?", [t(1, 1, month=2)]
        )
        refresh_marts(con, [date(2024, 1, 1)])
        assert fetch(con, "1h", t(31, 23))["last_price"] == 88.0
        assert fetch(con, "1h", t(1, 0, month=2))["last_return_pct"] == pytest.approx((110 / 88 - 1) * 100)
        assert fetch(con, "1h", t(1, 1, month=2))["last_price"] == 121.0


def test_month_windows_hold_up_to_three_months_and_reach_into_the_next_month_at_a_runs_end() -> None:
    one_us = timedelta(microseconds=1)
    # January and February are one run: one window, reaching March's first row (its return)
    assert month_windows([date(2024, 2, 1), date(2024, 1, 1), date(2024, 4, 1)]) == [
        (t(1), t(1, month=3) + one_us),
        (t(1, month=4), t(1, month=5) + one_us),
    ]
    # four contiguous months: three, then one; only the run's last window reaches further
    assert month_windows([date(2024, m, 1) for m in (1, 2, 3, 4)]) == [
        (t(1), t(1, month=4)),
        (t(1, month=4), t(1, month=5) + one_us),
    ]


def test_carry_formulas_by_hand(warehouse: Warehouse) -> None:
    fut = "future-BTC-USDT:USDT-20240131"
    with warehouse.writer() as con:
        con.execute(
            "insert into ref.instrument values "
            "('binance-futures', ?, 'perpetual', 'BTC', 'USDT', 'USDT', null, 1.0, 8), "
            "('binance-futures', ?, 'future', 'BTC', 'USDT', 'USDT', '2024-01-31 00:00:00+00', 1.0, null)",
            [BTC, fut],
        )
        for key in (BTC, fut):
            con.execute(
                "insert into raw.load_log values ('aperiodic', 'binance-futures', ?, 'exchange', '1h', "
                "'2024-01-01', 1, 1, now(), null)",
                [key],
            )
        insert_raw(
            con,
            [
                {
                    "ts": t(30, 0),
                    "last_price": 101.0,
                    "index_price": 100.0,
                    "mark_price": 101.0,
                    "instrument_key": fut,
                },
                {
                    "ts": t(30, 12),
                    "last_price": 100.5,
                    "index_price": 100.0,
                    "mark_price": 100.5,
                    "instrument_key": fut,
                },
                {
                    "ts": t(31, 0),
                    "last_price": 100.0,
                    "index_price": 100.0,
                    "mark_price": 100.2,
                    "instrument_key": fut,
                },
                {
                    "ts": t(31, 1),
                    "last_price": 100.0,
                    "index_price": 100.0,
                    "mark_price": 100.2,
                    "instrument_key": fut,
                },
                {"ts": t(30, 0), "last_price": 50.0, "index_price": 40.0, "mark_price": 40.1},
            ],
        )
        refresh_marts(con, [date(2024, 1, 1)])
        rows = by_key_and_ts(
            con,
            "select instrument_key, ts, dte_days, basis, basis_pct, annualized_basis_pct, "
            "funding_interval_hours, funding_annualized_pct from marts.fct_carry",
        )
    dte, basis, basis_pct, annualized, funding_hours, funding_ann = rows[(fut, t(30, 0))]
    assert dte == pytest.approx(1.0) and basis == pytest.approx(1.0) and basis_pct == pytest.approx(1.0)
    assert annualized == pytest.approx(365.0)  # 1 % x 365 / 1 day
    assert funding_hours is None and funding_ann is None
    dte, _, basis_pct, annualized, _, _ = rows[(fut, t(30, 12))]
    assert dte == pytest.approx(0.5) and basis_pct == pytest.approx(0.5)
    assert annualized == pytest.approx(365.0)  # 0.5 % x 365 / 0.5 day
    assert rows[(fut, t(31, 0))][0] == pytest.approx(0.0) and rows[(fut, t(31, 0))][3] is None  # at expiry
    assert rows[(fut, t(31, 1))][0] < 0 and rows[(fut, t(31, 1))][3] is None  # after expiry
    dte, basis, basis_pct, annualized, funding_hours, funding_ann = rows[(BTC, t(30, 0))]
    assert dte is None and annualized is None  # a perpetual has no expiry
    assert basis == pytest.approx(0.1) and basis_pct == pytest.approx(0.25)  # 0.1 / 40 x 100
    # no funding loaded for this hour: no rate, so no interval to claim either
    assert funding_hours is None and funding_ann is None


def test_month_windows_are_sized_by_the_rows_a_month_holds() -> None:
    """A wide universe gets narrower windows: with 400k raw rows a month and a 1M budget, two months
    fit a window and a third does not; a month over the budget is a window of its own."""
    months = [date(2024, m, 1) for m in (1, 2, 3, 4, 5)]
    rows = {date(2024, 1, 1): 400_000, date(2024, 2, 1): 400_000, date(2024, 3, 1): 400_000,
            date(2024, 4, 1): 2_500_000, date(2024, 5, 1): 100_000}  # fmt: skip
    one_us = timedelta(microseconds=1)
    assert month_windows(months, rows, max_rows=1_000_000) == [
        (t(1), t(1, month=3)),  # 800k
        (t(1, month=3), t(1, month=4)),  # 400k + 2.5M would pass the budget
        (t(1, month=4), t(1, month=5)),  # 2.5M alone: the smallest window
        (t(1, month=5), t(1, month=6) + one_us),
    ]
    # without row counts (or budget) the months alone decide: three, then two
    assert month_windows(months) == [(t(1), t(1, month=4)), (t(1, month=4), t(1, month=6) + one_us)]


def test_a_wide_window_runs_by_ranges_of_instruments_into_one_file_grouped_by_instrument(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three perpetuals of 48 hourly rows each; with a 40-row budget the load log's counts cut
    January into three ranges (A: 0 rows before it, B: 48, C: 96): the marts hold the same rows as
    one range gives, in one data file where each instrument's rows are one run (issue 28)."""
    keys = [f"perpetual-{name}-USDT:USDT" for name in "ABC"]
    with warehouse.writer() as con:
        for base, key in zip((100.0, 200.0, 300.0), keys, strict=True):
            rows = [{"ts": t(1) + timedelta(hours=h), "mark_price": base + h} for h in range(48)]
            insert_rows(
                con,
                "raw.aperiodic_derivative_price",
                rows,
                **{**BTC_1H, "instrument_key": key},
                loaded_at=t(1),
            )
            con.execute(
                "insert into raw.load_log (vendor, venue, instrument_key, timestamp_type, interval, month, rows, "
                "files, loaded_at) values ('aperiodic', 'binance-futures', ?, 'exchange', '1h', '2024-01-01', 48, 1, ?)",
                [key, t(1)],
            )
        refresh_marts(con, [date(2024, 1, 1)])
        one_range = mart_rows(con)
        monkeypatch.setenv("MARKHOUSE_MARTS_WINDOW_ROWS", "40")
        refresh_marts(con, [date(2024, 1, 1)])
        assert mart_rows(con) == one_range
        files = con.execute(
            "select data_file from ducklake_list_files('lake', 'fct_price_interval', schema => 'marts')"
        )
        (path,) = [f for (f,) in files.fetchall()]
        in_file = [k for (k,) in con.execute("select instrument_key from read_parquet(?)", [path]).fetchall()]
        b_return = con.execute(
            "select mark_return_pct from marts.fct_price_interval where instrument_key = ? and interval = '1h' and ts = ?",
            [keys[1], t(1, 1)],
        ).fetchone()
    # 48 hourly rows, 12 of 4h, 2 of 1d per instrument (the 5m..30m rollups need finer data)
    runs = [k for i, k in enumerate(in_file) if i == 0 or in_file[i - 1] != k]
    assert sorted(runs) == keys and len(in_file) == 3 * (48 + 12 + 2)
    assert b_return == (pytest.approx((201.0 / 200.0 - 1) * 100),)  # B's first hour to its second


@pytest.mark.parametrize(("max_rows", "cuts"), [(40, "BC"), (50, "C"), (200, "")])
def test_the_instrument_ranges_are_cut_where_the_load_logs_running_count_crosses_the_budget(
    warehouse: Warehouse, max_rows: int, cuts: str
) -> None:
    """A, B, C of 48 rows each: 0, 48 and 96 rows come before them in key order, so a range starts
    at B and C under a 40-row budget (48 // 40 = 1, 96 // 40 = 2), at C alone under 50 (96 // 50 =
    1; B's 48 is under it), nowhere under 200 (by hand)."""
    with warehouse.writer() as con:
        for name in "ABC":
            con.execute(
                "insert into raw.load_log (vendor, venue, instrument_key, timestamp_type, interval, month, rows, "
                "files, loaded_at) values ('aperiodic', 'binance-futures', ?, 'exchange', '1h', '2024-01-01', 48, 1, ?)",
                [f"perpetual-{name}-USDT:USDT", t(1)],
            )
        window = {"window_start": t(1), "window_end": datetime(2024, 2, 1, tzinfo=UTC), "max_rows": max_rows}
        got = con.execute(read_sql("warehouse/instrument_batches"), window).fetchall()
    assert [k for (k,) in got] == [f"perpetual-{name}-USDT:USDT" for name in cuts]
