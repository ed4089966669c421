"""Issue 27's carry curves on hand-built CayøLargo rows (Deribit BTC perpetual, March and June
quarterlies), every expected value worked out by hand from the formulas in the SQL headers."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines.models import build_views, mart_catalog
from pipelines.warehouse.lake import Warehouse
from tests.conftest import dict_rows
from tests.test_cayolargo_models import JUN, JUN_EXPIRY, MAR, MAR_EXPIRY, PERP, at, future, march_marts, perp

NEW_MARTS = (
    "fct_carry_constant_maturity",
    "fct_futures_rolled",
    "rpt_futures_rolls",
    "fct_funding_realized",
    "rpt_carry_trade",
)


def test_constant_maturity_interpolates_between_the_bracketing_expiries(warehouse: Warehouse) -> None:
    # 2026-03-17 08:00: March is 10 days out, June 101 (03-17 -> 06-17 is 92 days, + 9)
    # March: basis 0.2 % -> 0.2 x 365 / 10 = 7.3 % a year; June: 3.03 % -> 3.03 x 365 / 101 = 10.95 %
    with warehouse.writer() as con:
        march_marts(
            con,
            [
                future(MAR, at(17, 8), 50_100.0),
                future(JUN, at(17, 8), 51_515.0),
                perp(at(17, 8), 0.01),  # the perpetual is not a 0-day point: 7 days stays null
            ],
        )
        (row,) = dict_rows(con, "select * from marts.fct_carry_constant_maturity")
    assert (row["vendor"], row["venue"], row["coin"], row["settle"], row["ts"]) == (
        "cayolargo",
        "deribit",
        "BTC",
        "BTC",
        at(17, 8),
    )
    assert row["live_futures"] == 2
    # 7.3 + (10.95 - 7.3) x (T - 10) / (101 - 10)
    assert row["annualized_basis_30d_pct"] == pytest.approx(7.3 + 3.65 * 20 / 91)  # 8.1022
    assert row["annualized_basis_60d_pct"] == pytest.approx(7.3 + 3.65 * 50 / 91)  # 9.3055
    assert row["annualized_basis_90d_pct"] == pytest.approx(7.3 + 3.65 * 80 / 91)  # 10.5088
    assert row["forward_premium_30d_pct"] == pytest.approx(8.1021978 * 30 / 365, rel=1e-6)  # 0.6659
    assert (row["near_expiry_30d"], row["far_expiry_30d"]) == (MAR_EXPIRY, JUN_EXPIRY)
    assert (row["near_expiry_90d"], row["far_expiry_90d"]) == (MAR_EXPIRY, JUN_EXPIRY)
    # 7 days is before the nearest expiry, 180 after the farthest: no pair brackets them
    for tenor in (7, 180):
        assert row[f"annualized_basis_{tenor}d_pct"] is None
        assert row[f"forward_premium_{tenor}d_pct"] is None
        assert row[f"near_expiry_{tenor}d"] is None and row[f"far_expiry_{tenor}d"] is None


def test_the_front_rolls_eight_days_before_expiry_and_the_return_never_spans_two_contracts(
    warehouse: Warehouse,
) -> None:
    # March expires 2026-03-27 08:00: with N = 8 the front rolls at 2026-03-19 00:00 UTC
    with warehouse.writer() as con:
        march_marts(
            con,
            [
                future(MAR, at(18, 23, 40), 50_000.0),
                future(MAR, at(18, 23, 50), 50_050.0),
                future(MAR, at(19, 0), 50_100.0),
                future(JUN, at(18, 23, 40), 51_000.0),
                future(JUN, at(18, 23, 50), 51_000.0),
                future(JUN, at(19, 0), 51_102.0),
            ],
        )
        sql = "select * from marts.fct_futures_rolled where interval = ? order by ts"
        ten = {r["ts"]: r for r in dict_rows(con, sql, ["10m"])}
        hour = {r["ts"]: r for r in dict_rows(con, sql, ["1h"])}
        rolls = dict_rows(con, "select * from marts.rpt_futures_rolls")
        build_views(con, {"futures_roll_days_before_expiry": 3})  # N is a setting: 03-24 00:00
        later = dict_rows(
            con, "select * from marts.fct_futures_rolled where interval = '10m' and ts = ?", [at(19, 0)]
        )
    before, after = ten[at(18, 23, 50)], ten[at(19, 0)]
    assert (before["front_instrument_key"], before["second_instrument_key"]) == (MAR, JUN)
    assert before["front_roll_at"] == at(19, 0)
    assert before["front_mark_price"] == 50_050.0
    assert before["front_mark_return_pct"] == pytest.approx(0.1)  # 50,050 / 50,000 - 1
    assert not before["is_roll"]
    assert (
        after["is_roll"] and after["front_instrument_key"] == JUN and after["second_instrument_key"] is None
    )
    assert after["front_mark_price"] == 51_102.0
    # June's own return, 51,102 / 51,000 - 1 = 0.2 %, not 51,102 / March's 50,050 - 1 = 2.10 %
    assert after["front_mark_return_pct"] == pytest.approx(0.2)
    assert hour[at(19, 0)]["front_mark_return_pct"] == pytest.approx(0.2)  # the 1h close 23:50 -> 00:00
    assert hour[at(18, 23)]["front_instrument_key"] == MAR
    (roll,) = rolls
    assert roll["interval"] == "10m"
    assert (roll["roll_ts"], roll["scheduled_roll_at"], roll["previous_ts"]) == (
        at(19, 0),
        at(19, 0),
        at(18, 23, 50),
    )
    assert (roll["from_instrument_key"], roll["to_instrument_key"]) == (MAR, JUN)
    assert roll["from_dte_days"] == pytest.approx(8 + 8 / 24)
    assert (roll["from_mark_price"], roll["to_mark_price"]) == (50_050.0, 51_000.0)
    assert roll["roll_ratio"] == pytest.approx(51_000 / 50_050)
    assert later[0]["front_instrument_key"] == MAR and not later[0]["is_roll"]


def test_realized_funding_over_a_day_with_a_missed_settlement(warehouse: Warehouse) -> None:
    # Deribit settles every 8 h: 00:00, 08:00, 16:00 UTC
    with warehouse.writer() as con:
        march_marts(
            con,
            [
                perp(at(9, 0), 0.0001),
                perp(at(9, 8), 0.0001),
                perp(at(9, 12, 10), 0.0009),  # between settlements: not a settled rate
                perp(at(9, 16), 0.0001),
                perp(at(10, 0), 0.0001),
                # 2026-03-10 08:00 missed: no row at the settlement instant
                perp(at(10, 16), 0.0003),
            ],
        )
        days = {r["day"]: r for r in dict_rows(con, "select * from marts.fct_funding_realized")}
    full, missed = days[date(2026, 3, 9)], days[date(2026, 3, 10)]
    assert (full["settlements"], full["funded_hours"]) == (3, 24)
    assert full["realized_funding_rate"] == pytest.approx(0.0003)
    assert full["realized_apr_pct"] == pytest.approx(0.0003 * 365 * 100)  # 10.95
    assert (missed["settlements"], missed["funded_hours"]) == (2, 16)
    assert missed["realized_funding_rate"] == pytest.approx(0.0004)  # 0.0001 + 0.0003
    assert missed["realized_apr_pct"] == pytest.approx(0.0004 * 8760 / 16 * 100)  # 21.9
    # trailing 7 days: 0.0007 settled over 40 funded hours -> 0.0007 x 8760 / 40 x 100 = 15.33
    assert missed["funded_hours_7d"] == 40
    assert missed["realized_7d_apr_pct"] == pytest.approx(15.33)
    assert missed["realized_30d_apr_pct"] == pytest.approx(15.33)
    assert missed["predicted_7d_apr_pct"] is None  # CayøLargo sends no predicted rate


def test_carry_trade_figures_recomputed_by_hand(warehouse: Warehouse) -> None:
    # 2026-03-28 08:00: June is exactly 90 days out; 50,750 over an index of 50,000 = 1.5 %
    with warehouse.writer() as con:
        march_marts(
            con,
            [
                future(JUN, at(28, 8), 50_750.0),
                perp(at(28, 8), 0.0005),
                perp(at(28, 8, 50), 0.0001),  # the hour's last row is the one used
            ],
        )
        trades = {
            r["trade"]: r
            for r in dict_rows(con, "select * from marts.rpt_carry_trade where ts = ?", [at(28, 8)])
        }
    assert set(trades) == {"perp_vs_future", "cash_and_carry"}
    carry, pvf = trades["cash_and_carry"], trades["perp_vs_future"]
    basis = 1.5 * 365 / 90  # 6.0833 % a year
    funding = 0.0001 * 3 * 365 * 100  # 10.95 % a year, Deribit's 8-hourly rate
    assert carry["short_dte_days"] == pytest.approx(90.0)
    assert carry["short_annualized_basis_pct"] == pytest.approx(basis)
    assert carry["annualized_return_pct"] == pytest.approx(basis)
    assert carry["long_mark_price"] == 50_000.0 and carry["long_instrument_key"] is None
    assert pvf["long_instrument_key"] == PERP and pvf["short_instrument_key"] == JUN
    assert pvf["long_funding_annualized_pct"] == pytest.approx(funding)
    assert pvf["annualized_return_pct"] == pytest.approx(basis - funding)  # -4.8667
    assert (carry["rank_in_hour"], pvf["rank_in_hour"]) == (1, 2)


def test_every_new_mart_column_has_a_comment_from_marts_yml() -> None:
    catalog = mart_catalog()
    for mart in NEW_MARTS:
        description, columns = catalog[mart]
        assert description.strip(), mart
        assert columns and all(c.description.strip() for c in columns), mart
