"""CayøLargo through the models, on hand-built raw rows: carry formulas worked out by hand from the
vendor doc's formulas, the term-structure view, and 10-minute rollups computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from pipelines.models import refresh_marts
from pipelines.warehouse.lake import Warehouse
from tests.conftest import insert_rows, one_row

PERP = "perpetual-BTC-USD:BTC"
MAR = "future-BTC-USD:BTC-20260327"
JUN = "future-BTC-USD:BTC-20260626"
MAR_EXPIRY = datetime(2026, 3, 27, 8, tzinfo=UTC)
JUN_EXPIRY = datetime(2026, 6, 26, 8, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def add_instruments(con: Any) -> None:
    con.execute(
        "insert into ref.instrument values "
        "('deribit', ?, 'perpetual', 'BTC', 'USD', 'BTC', null, 10.0, 8), "
        "('deribit', ?, 'future', 'BTC', 'USD', 'BTC', ?, 10.0, null), "
        "('deribit', ?, 'future', 'BTC', 'USD', 'BTC', ?, 10.0, null)",
        [PERP, MAR, MAR_EXPIRY, JUN, JUN_EXPIRY],
    )


def instrument_columns(key: str) -> dict[str, Any]:
    """A raw row's columns that follow from its instrument (and the quiet defaults of the rest)."""
    perpetual = key.startswith("perpetual")
    return {
        "venue": "deribit",
        "instrument_key": key,
        "coin": "BTC",
        "instrument_id": {PERP: "BTC-PERPETUAL", MAR: "BTC-27MAR26", JUN: "BTC-26JUN26"}[key],
        "contract_type": "PERPETUALS" if perpetual else "FUTURES",
        "expiration_timestamp": datetime(3000, 1, 1, tzinfo=UTC)
        if perpetual
        else {MAR: MAR_EXPIRY, JUN: JUN_EXPIRY}[key],
        "contract_size": 10.0,
        "last_price": None,
        "open_interest": 0.0,
        "funding_rate": None,
        "funding_interval_hours": 8.0 if perpetual else None,
        "loaded_at": at(1),
    }


def insert(con: Any, rows: list[dict[str, Any]]) -> None:
    full = [{**instrument_columns(r.get("instrument_key", PERP)), **r} for r in rows]
    insert_rows(con, "raw.cayolargo_futures", full)


def march_marts(con: Any, rows: list[dict[str, Any]]) -> None:
    """The three instruments, ``rows`` of them, and March 2026's marts built on them."""
    add_instruments(con)
    insert(con, rows)
    refresh_marts(con, [date(2026, 3, 1)])


def future(key: str, ts: datetime, mark: float, index: float = 50_000.0) -> dict[str, Any]:
    return {"instrument_key": key, "ts": ts, "mark_price": mark, "index_price": index}


def perp(ts: datetime, rate: float | None) -> dict[str, Any]:
    return {
        "instrument_key": PERP,
        "ts": ts,
        "mark_price": 50_010.0,
        "index_price": 50_000.0,
        "funding_rate": rate,
    }


def carry(con: Any, key: str, ts: datetime) -> dict[str, Any]:
    return one_row(con, "select * from marts.fct_carry where instrument_key = ? and ts = ?", [key, ts])


def interval_row(con: Any, interval: str, ts: datetime) -> dict[str, Any]:
    return one_row(
        con,
        "select * from marts.fct_price_interval where vendor = 'cayolargo' and instrument_key = ? "
        "and interval = ? and ts = ?",
        [PERP, interval, ts],
    )


def test_carry_formulas_by_hand(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        march_marts(
            con,
            [
                # perpetual: 50,010 vs 50,000; funding 0.01% per 8 h; 1,000,000 contracts of 10 USD
                {
                    "ts": at(26, 8),
                    "mark_price": 50_010.0,
                    "index_price": 50_000.0,
                    "funding_rate": 0.0001,
                    "open_interest": 1_000_000.0,
                },
                # March quarterly 10 days, 1 day, 0 days and -10 minutes from its 08:00 expiry
                future(MAR, at(17, 8), 50_500.0),
                {**future(MAR, at(26, 8), 50_100.0), "open_interest": 2_500.0},
                future(MAR, at(27, 8), 50_000.0),
                future(MAR, at(27, 8, 10), 50_010.0),
                # June quarterly 91.5 days out (2026-03-26 20:00 -> 2026-06-26 08:00)
                future(JUN, at(26, 20), 51_000.0),
            ],
        )
        perp = carry(con, PERP, at(26, 8))
        ten = carry(con, MAR, at(17, 8))
        one = carry(con, MAR, at(26, 8))
        zero = carry(con, MAR, at(27, 8))
        after = carry(con, MAR, at(27, 8, 10))
        june = carry(con, JUN, at(26, 20))
    # basis = mark - index; basis_pct = basis / index x 100 (vendor doc)
    assert perp["basis"] == pytest.approx(10.0)
    assert perp["basis_pct"] == pytest.approx(0.02)  # 10 / 50,000 x 100
    assert perp["annualized_basis_pct"] is None and perp["dte_days"] is None  # perpetual: no DTE
    # funding annualized = rate x 3 x 365 x 100 for 8-hourly funding: 0.0001 x 1095 x 100
    assert perp["funding_interval_hours"] == 8.0
    assert perp["funding_annualized_pct"] == pytest.approx(10.95)
    assert perp["oi_usd"] == pytest.approx(10_000_000.0)  # 1,000,000 contracts x 10 USD
    # annualized basis = basis_pct x 365 / DTE
    assert ten["dte_days"] == pytest.approx(10.0)
    assert ten["basis_pct"] == pytest.approx(1.0)  # 500 / 50,000 x 100
    assert ten["annualized_basis_pct"] == pytest.approx(36.5)  # 1.0 x 365 / 10
    assert one["dte_days"] == pytest.approx(1.0)
    assert one["basis"] == pytest.approx(100.0) and one["basis_pct"] == pytest.approx(0.2)
    assert one["annualized_basis_pct"] == pytest.approx(73.0)  # 0.2 x 365 / 1
    assert one["funding_rate"] is None and one["funding_annualized_pct"] is None
    assert one["funding_interval_hours"] is None  # a dated future has no funding
    assert one["oi_usd"] == pytest.approx(25_000.0)  # 2,500 x 10
    assert zero["dte_days"] == pytest.approx(0.0) and zero["annualized_basis_pct"] is None
    assert after["dte_days"] == pytest.approx(-10 / 1440) and after["annualized_basis_pct"] is None
    assert june["dte_days"] == pytest.approx(91.5)
    assert june["annualized_basis_pct"] == pytest.approx(2.0 * 365 / 91.5)  # 1,000 / 50,000 x 100 = 2 %


def test_term_structure_lists_the_perpetual_then_live_futures_by_expiry(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        march_marts(
            con,
            [
                perp(at(27, 7, 50), 0.0001),
                future(MAR, at(27, 7, 50), 50_001.0),
                future(JUN, at(27, 7, 50), 51_000.0),
                perp(at(27, 8, 10), 0.0001),
                # the March future after its expiry: not on the curve any more
                future(MAR, at(27, 8, 10), 50_000.0),
                future(JUN, at(27, 8, 10), 51_000.0),
            ],
        )
        before = con.execute(
            "select tenor_rank, instrument_key, dte_days, annualized_basis_pct, carry_annualized_pct "
            "from marts.rpt_term_structure where coin = 'BTC' and ts = ? order by tenor_rank",
            [at(27, 7, 50)],
        ).fetchall()
        later = con.execute(
            "select tenor_rank, instrument_key from marts.rpt_term_structure where ts = ? order by tenor_rank",
            [at(27, 8, 10)],
        ).fetchall()
    assert [(r[0], r[1]) for r in before] == [(0, PERP), (1, MAR), (2, JUN)]
    assert before[0][2] is None and before[0][3] is None
    assert before[0][4] == pytest.approx(10.95)  # the perpetual's point is its annualized funding
    assert before[1][2] == pytest.approx(10 / 1440)  # ten minutes to expiry
    assert before[1][3] == pytest.approx(0.002 * 365 / (10 / 1440))  # 1 / 50,000 x 100 = 0.002 %
    assert before[2][2] == pytest.approx(91 + 10 / 1440)  # 07:50 Mar 27 -> 08:00 Jun 26
    assert before[2][3] == pytest.approx(2.0 * 365 / (91 + 10 / 1440))  # 1,000 / 50,000 x 100 = 2 %
    assert later == [(0, PERP), (1, JUN)]


def test_ten_minute_rollups_by_hand(warehouse: Warehouse) -> None:
    # hour 00:00: six snapshots; hour 01:00: six more; only 01:00 and 01:10 of hour 02:00
    first_hour = [  # (last, index, mark) at 00:00, 00:10, ..., 00:50
        (100.0, 200.0, 50.0),
        (101.0, 201.0, 51.0),
        (99.0, 199.0, 49.0),
        (102.0, 202.0, 52.0),
        (103.0, 200.0, 53.0),
        (110.0, 200.0, 55.0),
    ]
    second_hour = [(110.0, 200.0, 55.0)] * 5 + [(121.0, 220.0, 66.0)]
    third_hour = [(121.0, 220.0, 66.0), (121.0, 220.0, 66.0)]
    rows = []
    for hour, prices in enumerate((first_hour, second_hour, third_hour)):
        for k, (last, index, mark) in enumerate(prices):
            rows.append(
                {
                    "ts": at(10, hour, 10 * k),
                    "last_price": last,
                    "index_price": index,
                    "mark_price": mark,
                }
            )
    with warehouse.writer() as con:
        march_marts(con, rows)
        h0 = interval_row(con, "1h", at(10, 0))
        h1 = interval_row(con, "1h", at(10, 1))
        h2 = interval_row(con, "1h", at(10, 2))
        four = interval_row(con, "4h", at(10, 0))
        day = interval_row(con, "1d", at(10))
        native = interval_row(con, "10m", at(10, 0, 50))
        intervals = {
            r[0]
            for r in con.execute(
                "select distinct interval from marts.fct_price_interval where vendor = 'cayolargo'"
            ).fetchall()
        }
    assert intervals == {"10m", "30m", "1h", "4h", "1d"}  # whole multiples of 10m only: never 15m
    # native 10m row: one observation, no in-interval change
    assert native["source_interval"] == "10m" and native["n_obs"] == 1
    assert native["last_price_pct_change"] is None
    assert native["last_return_pct"] == pytest.approx((110 / 103 - 1) * 100)  # vs 00:40
    # hour 00:00: final = the 00:50 snapshot, first -> final within the hour
    assert h0["source_interval"] == "10m" and h0["n_obs"] == 6
    assert (h0["last_price"], h0["index_price"], h0["mark_price"]) == (110.0, 200.0, 55.0)
    assert h0["last_price_pct_change"] == pytest.approx(10.0)  # 100 -> 110
    assert h0["mark_price_pct_change"] == pytest.approx(10.0)  # 50 -> 55
    assert h0["index_price_pct_change"] == pytest.approx(0.0)  # 200 -> 200
    assert h0["mark_last_pct_change_ratio"] == pytest.approx(1.0)
    assert h0["mark_index_pct_change_ratio"] is None  # zero denominator
    assert h0["last_return_pct"] is None  # no preceding hour
    # hour 01:00: close to close against hour 00:00 (110 -> 121, 200 -> 220, 55 -> 66)
    assert h1["last_return_pct"] == pytest.approx(10.0)
    assert h1["index_return_pct"] == pytest.approx(10.0)
    assert h1["mark_return_pct"] == pytest.approx(20.0)
    assert h1["mark_last_return_ratio"] == pytest.approx(2.0)
    assert h1["index_last_return_ratio"] == pytest.approx(1.0)
    assert h1["last_price_pct_change"] == pytest.approx(10.0)  # 110 -> 121 inside the hour
    assert h1["mark_index_pct_change_ratio"] == pytest.approx(2.0)  # 20 % / 10 %
    # hour 02:00: two snapshots, flat
    assert h2["n_obs"] == 2 and h2["last_price_pct_change"] == pytest.approx(0.0)
    assert h2["last_return_pct"] == pytest.approx(0.0)
    # 4h and 1d: 14 snapshots, 100 -> 121 and 50 -> 66
    for row in (four, day):
        assert row["n_obs"] == 14 and row["source_interval"] == "10m"
        assert row["last_price"] == 121.0
        assert row["last_price_pct_change"] == pytest.approx(21.0)
        assert row["mark_price_pct_change"] == pytest.approx(32.0)
        assert row["index_price_pct_change"] == pytest.approx(10.0)
        assert row["mark_last_pct_change_ratio"] == pytest.approx(32 / 21)
