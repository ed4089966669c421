"""The embedded emulator's OKX option chain loaded into a warehouse and read back through
marts.fct_option_vol: put-call parity holds on the loaded marks, and the volatility surface the
emulator documents (pipelines/emulator/README.md "Options") comes back from them. Values are checked
against the README's formula written out here and Black-76 by math.erf, not the project's code."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipelines.emulator.server import Emulator
from pipelines.models import refresh_marts
from pipelines.reference import Reference, VendorName
from pipelines.sources.kaiko.client import KaikoClient
from pipelines.sources.kaiko.load import Series, load_months
from pipelines.sources.kaiko.source import to_kaiko, with_expiry
from pipelines.universe.instruments import parse_instrument
from pipelines.warehouse.lake import Warehouse
from tests.conftest import FAST_RETRY

MAY = date(2026, 5, 1)
BTC_STRIKES = (72_000, 76_000, 80_000, 84_000, 88_000)
# (venue, key, interval): BTC's 29 May chain hourly, one ETH pair of 5 June every minute
CHAIN = [
    ("okx-futures", "future-BTC-USD:BTC-20260529", "1h"),
    *(("okx-options", f"option-BTC-USD:BTC-20260529-{k}-{r}", "1h") for k in BTC_STRIKES for r in "CP"),
    ("okx-futures", "future-ETH-USD:ETH-20260605", "1m"),
    *(("okx-options", f"option-ETH-USD:ETH-20260605-2300-{r}", "1m") for r in "CP"),
]


@pytest.fixture(scope="module")
def vols(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    """fct_option_vol's rows after loading ``CHAIN`` for May 2026 from the emulator."""
    warehouse = Warehouse(Path(tmp_path_factory.mktemp("chain")) / "warehouse" / "chain.sqlite")
    instruments = [
        parse_instrument({"venue": v, "symbol": k}, "test", (v,)) for v, k, _ in dict.fromkeys(CHAIN)
    ]
    instruments = [replace(i, instrument=with_expiry("okex", i.instrument)) for i in instruments]
    codes = [to_kaiko(i.venue, i.instrument) for i in instruments]
    names = [
        VendorName("kaiko", c.exchange, c.instrument_class, c.instrument, i.venue, i.instrument_key)
        for i, c in zip(instruments, codes, strict=True)
    ]
    series = [
        Series(i.venue, i.instrument_key, c, interval)
        for i, c, (_, _, interval) in zip(instruments, codes, CHAIN, strict=True)
    ]
    with Emulator() as emu:
        client = KaikoClient(emu.base_url("kaiko"), emu.api_key, retry=FAST_RETRY)
        load_months(
            client, warehouse, series, [MAY], workers=4, progress=lambda _: None,
            reference=Reference(instruments, names),
        )  # fmt: skip
    with warehouse.writer() as con:
        refresh_marts(con, [MAY])
        cur = con.execute("select * from marts.fct_option_vol order by all")
        columns = [d[0] for d in cur.description]
        yield [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def _n(x: float) -> float:
    return (1 + math.erf(x / math.sqrt(2))) / 2


def surface(coin: str, forward: float, strike: float, years: float) -> float:
    """The emulator's documented surface: atm(tau) = long + (short - long) exp(-tau / 0.25),
    z = clip(ln(K/F) / sqrt(tau), -3, 3), vol = atm (1 - 0.10 z + 0.04 z^2)."""
    short, long = {"BTC": (0.40, 0.50), "ETH": (0.55, 0.65)}[coin]
    z = max(-3.0, min(3.0, math.log(strike / forward) / math.sqrt(years)))
    return (long + (short - long) * math.exp(-years / 0.25)) * (1 - 0.10 * z + 0.04 * z * z)


def test_put_call_parity_on_the_loaded_chain(vols: list[dict[str, Any]]) -> None:
    # undiscounted Black-76 in forward terms: (call - put) x F = F - K. Each coin mark is rounded to
    # 1e-8 coin (half a unit either way), so the two marks' difference is within 1e-8 coin: times F
    by_pair: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in (r for r in vols if r["mark_price"] is not None):
        by_pair.setdefault((r["interval"], r["ts"], r["expiry"], r["strike"]), {})[r["option_type"]] = r
    pairs = [(p["call"], p["put"]) for p in by_pair.values() if len(p) == 2]
    # BTC 1h: 1 May 08:00 (listing) .. 17 May 06:00 (07:00 has no mark), 383 hours, five strikes;
    # ETH 1m: 8 May 08:00 .. 17 May 06:59, 9 days less one hour; its 1h rows rolled up from them.
    # The last hour (07:00) has trades and no mark (the future has none): 'no_mark', in no pair
    last_hour = {(r["underlying"], r["interval"]) for r in vols if r["iv_null_reason"] == "no_mark"}
    assert (
        sum(r["iv_null_reason"] == "no_mark" and r["interval"] in ("1m", "1h") for r in vols) == 10 + 120 + 2
    )
    assert {("BTC", "1h"), ("ETH", "1m")} <= last_hour
    counts: dict[tuple[str, str], int] = {}
    for c, _ in pairs:
        counts[c["underlying"], c["interval"]] = counts.get((c["underlying"], c["interval"]), 0) + 1
    native = {("BTC", "1h"): 5 * 383, ("ETH", "1m"): (9 * 24 - 1) * 60, ("ETH", "1h"): 9 * 24 - 1}
    assert {k: counts[k] for k in native} == native  # and the rollups (5m .. 1d) of ETH's minutes
    for call, put in pairs:
        forward = call["forward_price"]
        assert forward == put["forward_price"] and call["forward_source"] == "future"
        gap = (call["mark_price"] - put["mark_price"]) * forward - (forward - call["strike"])
        assert abs(gap) <= 1e-8 * forward, (call["instrument_key"], call["ts"])
        # in USD at the index: (call - put) x index = (F - K) x index / F, the same to the rounding
        usd = call["premium_usd"] - put["premium_usd"]
        assert usd == pytest.approx(
            (forward - call["strike"]) * call["index_price"] / forward, abs=1e-8 * forward
        )


def test_the_surface_comes_back_from_the_emulators_prices(vols: list[dict[str, Any]]) -> None:
    checked = 0
    # the loaded intervals (a rollup's last, partial interval is valued at its end, not its last minute)
    loaded = (("BTC", "1h"), ("ETH", "1m"))
    for r in (r for r in vols if (r["underlying"], r["interval"]) in loaded and r["mark_price"] is not None):
        forward, strike, years = r["forward_price"], r["strike"], r["years_to_expiry"]
        want = surface(r["underlying"], forward, strike, years)
        assert r["iv_null_reason"] is None and r["forward_instrument_key"].startswith("future-")
        # the mark is rounded to half of 1e-8 coin: a volatility error of at most that over the
        # price's sensitivity to it (vega per unit of forward, phi(d1) sqrt(T))
        d1 = (math.log(forward / strike) + want * want * years / 2) / (want * math.sqrt(years))
        vega = math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi) * math.sqrt(years)
        assert r["iv_mark"] == pytest.approx(want, abs=0.5e-8 / vega + 1e-12), (r["instrument_key"], r["ts"])
        # delta from the same surface, by the textbook N(d1)
        assert r["delta"] == pytest.approx(_n(d1) - (r["option_type"] == "put"), abs=1e-6)
        checked += 1
    assert checked == 2 * (5 * 383 + (9 * 24 - 1) * 60)


def test_which_okx_contracts_the_emulator_lists() -> None:
    from pipelines.sources.kaiko.emulator import find_instrument

    # 29 May 2026 is a Friday (not a quarterly date): listed 28 days before its 08:00 UTC expiry
    got = find_instrument("okex", "option", "btc-usd-260529-80000-c")
    assert got is not None and got.strike == 80_000 and got.is_call and got.future.code == "btcusd260529"
    assert got.expiry_ms - got.listed_ms == 28 * 86_400_000  # type: ignore[operator]
    quarterly = find_instrument("okex", "future", "ethusd260626")  # the last Friday of June: 182 days
    assert quarterly is not None and quarterly.expiry_ms - quarterly.listed_ms == 182 * 86_400_000  # type: ignore[operator]
    for exchange, klass, code in (
        ("okex", "option", "btc-usd-260530-80000-c"),  # a Saturday
        ("okex", "option", "btc-usd-260529-80500-c"),  # off BTC's 1,000 grid
        ("okex", "option", "eth-usd-260529-2310-p"),  # off ETH's 50 grid
        ("okex", "perpetual-future", "btc-usdt"),  # outside the emulated contract
        ("bnce", "option", "btc-usd-260529-80000-c"),
        ("bnce", "future", "btcusdt260529"),  # Binance lists quarterlies only
    ):
        assert find_instrument(exchange, klass, code) is None, code
