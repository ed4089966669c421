"""Black-76 implied volatility and greeks (pipelines/options.py) against a second pricer written here
with math.erf, and marts.fct_option_vol on hand-made OKX option rows: the volatility each premium
was priced at comes back, the forward's source, the USD premium, and each null reason."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from pipelines.models import mart_catalog, refresh_marts
from pipelines.options import greeks, implied_vol
from pipelines.reference import upsert_reference
from pipelines.sources.kaiko.source import with_expiry
from pipelines.universe.instruments import parse_instrument
from pipelines.warehouse.lake import Warehouse
from tests.conftest import insert_rows


def price(call: bool, forward: float, strike: float, years: float, vol: float) -> float:
    """Undiscounted Black-76 from the textbook formula, N(x) = (1 + erf(x / sqrt 2)) / 2."""

    def n(x: float) -> float:
        return (1 + math.erf(x / math.sqrt(2))) / 2

    d1 = (math.log(forward / strike) + vol * vol * years / 2) / (vol * math.sqrt(years))
    d2 = d1 - vol * math.sqrt(years)
    return forward * n(d1) - strike * n(d2) if call else strike * n(-d2) - forward * n(-d1)


def test_a_hand_worked_price_gives_its_volatility() -> None:
    # F = K = 100, T = 0.5, vol 0.4: d1 = 0.4 x sqrt(0.5) / 2 = 0.141421, N(d1) = 0.556231,
    # call = 100 x (2 N(d1) - 1) = 11.2463 (tables); the 4-decimal price pins vol to ~1e-5
    vol = implied_vol(
        np.array([True]), np.array([100.0]), np.array([100.0]), np.array([0.5]), np.array([11.2463])
    )
    assert vol[0] == pytest.approx(0.4, abs=2e-5)


@pytest.mark.parametrize("call", [True, False])
def test_volatility_recovered_to_1e_6_across_strikes_expiries_and_levels(call: bool) -> None:
    cases = [
        (f, f * m, y, v)
        for f in (2_500.0, 95_000.0)
        for m in (0.6, 0.9, 1.0, 1.1, 1.6)
        for y in (1 / 365, 30 / 365, 1.0)
        for v in (0.25, 0.6, 1.5)
        if abs(math.log(m)) < 4 * v * math.sqrt(y)  # a premium that is not a rounding of zero
    ]
    forward, strike, years, vol = (np.array(c) for c in zip(*cases, strict=True))
    premium = np.array([price(call, *c) for c in cases])
    got = implied_vol(np.full(len(cases), call), forward, strike, years, premium)
    assert len(cases) > 50
    assert np.max(np.abs(got - vol)) < 1e-6


def test_a_coin_quoted_premium_times_the_forward_gives_the_volatility() -> None:
    # OKX quotes BTC-USD:BTC options in BTC: 0.0421 BTC at forward 96,000 is 4,041.6 USD forward terms
    forward, strike, years, vol = 96_000.0, 100_000.0, 45 / 365, 0.55
    coin = price(True, forward, strike, years, vol) / forward
    got = implied_vol(
        np.array([True]),
        np.array([forward]),
        np.array([strike]),
        np.array([years]),
        np.array([coin * forward]),
    )
    assert got[0] == pytest.approx(vol, abs=1e-6)


@pytest.mark.parametrize("call", [True, False])
def test_greeks_match_finite_differences(call: bool) -> None:
    f, k, y, v = 60_000.0, 65_000.0, 20 / 365, 0.7
    hf, hv, hy = 1.0, 1e-5, 1e-6
    delta, gamma, vega, theta = (
        float(g[0]) for g in greeks(np.array([call]), *(np.array([x]) for x in (f, k, y, v)))
    )
    assert delta == pytest.approx(
        (price(call, f + hf, k, y, v) - price(call, f - hf, k, y, v)) / (2 * hf), rel=1e-6
    )
    second = price(call, f + hf, k, y, v) - 2 * price(call, f, k, y, v) + price(call, f - hf, k, y, v)
    assert gamma == pytest.approx(second / hf**2, rel=1e-4)
    # per volatility point (0.01) and per calendar day (time to expiry shrinking by 1/365)
    assert vega == pytest.approx(
        (price(call, f, k, y, v + hv) - price(call, f, k, y, v - hv)) / (2 * hv) / 100, rel=1e-6
    )
    assert theta == pytest.approx(
        -(price(call, f, k, y + hy, v) - price(call, f, k, y - hy, v)) / (2 * hy) / 365, rel=1e-5
    )
    assert (delta > 0) == call


def test_no_volatility_outside_the_arbitrage_bounds() -> None:
    # call F=100 K=90: intrinsic 10, at most 100; put F=100 K=90: at most 90; T <= 0: expired
    call = np.array([True, True, True, False, True])
    got = implied_vol(
        call,
        np.full(5, 100.0),
        np.full(5, 90.0),
        np.array([1, 1, 1, 1, 0.0]),
        np.array([9.99, 10.0, 100.0, 90.0, 12.0]),
    )
    assert np.isnan(got).all()


# ---------------------------------------------------------------------------------------------------
# marts.fct_option_vol

EXPIRY = datetime(2026, 3, 27, 8, tzinfo=UTC)  # OKX delivers at 08:00 UTC
TS = datetime(2026, 3, 2, 8, tzinfo=UTC)  # a 1h row, valued at its end (09:00): 24 days 23 h to expiry
YEARS = (25 * 24 - 1) / (365 * 24)
FUTURE = "future-BTC-USD:BTC-20260327"
INDEX, FORWARD = 90_000.0, 91_000.0
# the March future at TS: the forward of the March options
FUTURE_ROW = {
    "venue": "okx-futures",
    "instrument_key": FUTURE,
    "ts": TS,
    "mark_price": FORWARD,
    "index_price": INDEX,
}


def _key(strike: int, right: str, day: str = "20260327", settle: str = "BTC") -> str:
    return f"option-BTC-USD:{settle}-{day}-{strike}-{right}"


def _refresh(warehouse: Warehouse, rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    keys = {(r["venue"], r["instrument_key"]) for r in rows}
    with warehouse.writer() as con:
        universe = [parse_instrument({"venue": v, "symbol": k}, "test", (v,)) for v, k in sorted(keys)]
        upsert_reference(
            con, [replace(u, instrument=with_expiry("okex", u.instrument)) for u in universe], []
        )
        insert_rows(con, "raw.kaiko_derivative_price", rows, interval="1h", loaded_at=TS)
        refresh_marts(con, [date(2026, 3, 1)])
        found = con.execute(
            "select instrument_key, ts, forward_source, forward_price, years_to_expiry, premium_usd, "
            "iv_mark, iv_last, delta, iv_null_reason from marts.fct_option_vol where interval = '1h'"
        ).fetchall()
    return {f"{r[0]} {r[1]:%d %H}": r[2:] for r in found}


def _fd_delta(strike: float, vol: float) -> float:
    up, down = (price(True, FORWARD + h, strike, YEARS, vol) for h in (1.0, -1.0))
    return (up - down) / 2


def test_fct_option_vol_by_hand(warehouse: Warehouse) -> None:
    opt = {"venue": "okx-options", "ts": TS, "index_price": INDEX}
    call, put, later = _key(95000, "C"), _key(85000, "P"), _key(100000, "C", "20260626")
    usdc, itm, rich = _key(90000, "P", settle="USDC"), _key(70000, "C"), _key(120000, "C")
    june = datetime(2026, 6, 26, 8, tzinfo=UTC)
    june_years = (june - TS - timedelta(hours=1)).total_seconds() / (365 * 86_400)
    rows = [
        FUTURE_ROW,
        # coin-quoted call at vol 0.6, its last at 0.65, forward from the March future
        {
            **opt,
            "instrument_key": call,
            "mark_price": price(True, FORWARD, 95_000, YEARS, 0.6) / FORWARD,
            "last_price": price(True, FORWARD, 95_000, YEARS, 0.65) / FORWARD,
        },
        {**opt, "instrument_key": put, "mark_price": price(False, FORWARD, 85_000, YEARS, 0.7) / FORWARD},
        # no June future: the index, zero carry
        {**opt, "instrument_key": later, "mark_price": price(True, INDEX, 100_000, june_years, 0.5) / INDEX},
        # a USDC-margined put: the premium in USD as quoted
        {**opt, "instrument_key": usdc, "mark_price": price(False, FORWARD, 90_000, YEARS, 0.45)},
        # below intrinsic: (91,000 - 70,000) / 91,000 = 0.2308 BTC is the least a 70k call is worth
        {**opt, "instrument_key": itm, "mark_price": 0.2},
        {**opt, "instrument_key": rich, "mark_price": 1.0},  # a call worth the whole forward
        {**opt, "instrument_key": call, "ts": TS + timedelta(hours=1), "last_price": 0.01},  # no mark
        {
            **opt,
            "instrument_key": later,
            "ts": TS + timedelta(hours=2),
            "index_price": None,
            "mark_price": 0.01,
        },
        {**opt, "instrument_key": call, "ts": EXPIRY - timedelta(hours=1), "mark_price": 0.001},
    ]
    got = _refresh(warehouse, rows)
    usd = price(True, FORWARD, 95_000, YEARS, 0.6) / FORWARD * INDEX
    assert got[f"{call} 02 08"][:4] == ("future", FORWARD, pytest.approx(YEARS), pytest.approx(usd))
    assert got[f"{call} 02 08"][4:7] == (
        pytest.approx(0.6, abs=1e-6),
        pytest.approx(0.65, abs=1e-6),
        pytest.approx(_fd_delta(95_000, 0.6), rel=1e-6),
    )
    assert got[f"{put} 02 08"][4] == pytest.approx(0.7, abs=1e-6) and got[f"{put} 02 08"][6] < 0
    assert got[f"{later} 02 08"][:2] == ("index", INDEX)
    assert got[f"{later} 02 08"][4] == pytest.approx(0.5, abs=1e-6)
    assert got[f"{usdc} 02 08"][3:5] == (
        pytest.approx(price(False, FORWARD, 90_000, YEARS, 0.45)),
        pytest.approx(0.45, abs=1e-6),
    )
    reasons = {k: v[-1] for k, v in got.items() if v[4] is None}
    assert reasons == {
        f"{itm} 02 08": "below_intrinsic",
        f"{rich} 02 08": "above_maximum",
        f"{call} 02 09": "no_mark",
        f"{later} 02 10": "no_forward",
        f"{call} 27 07": "expired",  # 07:00-08:00 valued at 08:00, the expiry
    }
    assert all(v[-1] is None for v in got.values() if v[4] is not None)


def test_every_option_mart_column_has_a_comment_from_marts_yml() -> None:
    catalog = mart_catalog()
    for mart in ("fct_option_vol", "rpt_vol_smile", "rpt_vol_term_structure"):
        description, columns = catalog[mart]
        assert description.strip() and columns and all(c.description.strip() for c in columns), mart
    dim = {c.name: c for c in catalog["dim_instrument"][1]}
    assert all(dim[c].description.strip() for c in ("strike", "option_type", "premium_currency"))


def _n(x: float) -> float:
    return (1 + math.erf(x / math.sqrt(2))) / 2


def test_the_smile_atm_risk_reversal_and_butterfly_by_hand(warehouse: Warehouse) -> None:
    # one hourly snapshot, forward 91,000 from the March future; vol by strike (a put skew)
    smile = {
        80_000: 0.62,
        85_000: 0.56,
        90_000: 0.50,
        95_000: 0.48,
        100_000: 0.49,
        105_000: 0.51,
        110_000: 0.54,
    }
    opt = {"venue": "okx-options", "ts": TS, "index_price": INDEX}
    rows = [FUTURE_ROW]
    for k, v in smile.items():
        for right in ("C", "P"):
            rows.append(
                {
                    **opt,
                    "instrument_key": _key(k, right),
                    "mark_price": price(right == "C", FORWARD, k, YEARS, v) / FORWARD,
                }
            )
    rows.append({**opt, "instrument_key": _key(75_000, "P"), "mark_price": 0.0})  # no volatility: left out
    _refresh(warehouse, rows)
    with warehouse.writer() as con:
        points = con.execute(
            "select strike, option_type, log_moneyness, iv_mark from marts.rpt_vol_smile order by strike"
        ).fetchall()
        (atm, call25, put25, rr, bf, strikes) = con.execute(
            "select atm_vol, call_25d_vol, put_25d_vol, rr_25d, bf_25d, strikes from marts.rpt_vol_term_structure"
        ).fetchone()
    # out of the money: puts below 91,000, calls above
    assert [(k, t) for k, t, *_ in points] == [(k, "put" if k < FORWARD else "call") for k in smile]
    assert all(
        m == pytest.approx(math.log(k / FORWARD)) and iv == pytest.approx(smile[k], abs=1e-6)
        for k, _, m, iv in points
    )
    assert strikes == 7
    # 91,000 lies 1/5 of the way from 90,000 (0.50) to 95,000 (0.48)
    assert atm == pytest.approx(0.496, abs=1e-6)

    def delta(k: int) -> float:
        v = smile[k]
        return _n((math.log(FORWARD / k) + v * v * YEARS / 2) / (v * math.sqrt(YEARS)))

    def at(target: float, a: int, b: int, put: bool) -> float:  # linear in delta between strikes a and b
        da, db = delta(a) - put, delta(b) - put
        assert min(da, db) < target < max(da, db)  # the strikes chosen bracket it
        return smile[a] + (smile[b] - smile[a]) * (target - da) / (db - da)

    c25, p25 = at(0.25, 100_000, 105_000, False), at(-0.25, 80_000, 85_000, True)
    assert (call25, put25) == (pytest.approx(c25, abs=1e-6), pytest.approx(p25, abs=1e-6))
    assert rr == pytest.approx(c25 - p25, abs=1e-6) and rr < 0  # the put skew
    assert bf == pytest.approx((c25 + p25) / 2 - 0.496, abs=1e-6)


def test_a_time_value_below_float_resolution_has_no_fit(warehouse: Warehouse) -> None:
    # a USDC-margined 80,000 call at forward 91,000 priced one float step above its intrinsic 11,000:
    # above intrinsic, so not 'below_intrinsic', yet the time value C - (F - K) is not resolvable:
    # its out-of-the-money twin (the put) is worth C / F - (1 - K / F) <= 0 in float arithmetic
    premium = math.nextafter(11_000.0, math.inf)
    assert premium / FORWARD - (1 - 80_000 / FORWARD) <= 0 < premium - 11_000
    key = _key(80000, "C", settle="USDC")
    got = _refresh(
        warehouse,
        [
            FUTURE_ROW,
            {
                "venue": "okx-options",
                "ts": TS,
                "index_price": INDEX,
                "instrument_key": key,
                "mark_price": premium,
            },
        ],
    )
    assert got[f"{key} 02 08"][4] is None and got[f"{key} 02 08"][-1] == "no_fit"


def test_the_forward_is_the_options_own_exchanges_future_first(warehouse: Warehouse) -> None:
    # Binance's March future sorts before OKX's by venue, at 92,000: the OKX option takes OKX's 91,000;
    # for June only Binance has one (93,000): the June option takes it
    binance = {**FUTURE_ROW, "venue": "binance-futures", "instrument_key": "future-BTC-USDT:USDT-20260327"}
    june = {**binance, "instrument_key": "future-BTC-USDT:USDT-20260626", "mark_price": 93_000.0}
    call, later = _key(95000, "C"), _key(100000, "C", "20260626")
    option = {"venue": "okx-options", "ts": TS, "index_price": INDEX, "mark_price": 0.01}
    rows = [FUTURE_ROW, {**binance, "mark_price": 92_000.0}, june]
    got = _refresh(
        warehouse, [*rows, {**option, "instrument_key": call}, {**option, "instrument_key": later}]
    )
    assert got[f"{call} 02 08"][:2] == ("future", FORWARD)
    assert got[f"{later} 02 08"][:2] == ("future", 93_000.0)
