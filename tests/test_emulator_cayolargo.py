"""The emulator's CayøLargo endpoint speaks PROTOCOLS.md §3, and its snapshots derive from the real
Binance sample as documented (values checked against the shipped parquet, read independently)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from pipelines.emulator.server import Emulator

DATA = Path(__file__).resolve().parent.parent / "pipelines/emulator/data"


def get(emu: Emulator, headers: dict[str, str] | None = None, **params: Any) -> requests.Response:
    hdrs = {"X-API-Key": emu.api_key} if headers is None else headers
    return requests.get(
        f"{emu.base_url('cayolargo')}/v1/marketdata/futures", params=params, headers=hdrs, timeout=30
    )


def rows(emu: Emulator, **params: Any) -> list[dict[str, Any]]:
    resp = get(emu, **params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert isinstance(body, list)  # default envelope: a bare list
    return body


@pytest.mark.parametrize(
    ("params", "status", "text"),
    [
        ({}, 400, "Missing required parameter: coin"),
        ({"coin": "DOGE"}, 400, "Invalid coin 'DOGE'"),
        ({"coin": "BTC", "limit": "5001"}, 400, "Invalid limit '5001'"),
        ({"coin": "BTC", "limit": "0"}, 400, "Invalid limit '0'"),
        ({"coin": "BTC", "from": "yesterday"}, 400, "Invalid from 'yesterday'"),
        ({"coin": "BTC", "from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, 400, "to must be"),
    ],
)
def test_bad_parameters_are_400(emulator: Emulator, params: dict[str, str], status: int, text: str) -> None:
    resp = get(emulator, **params)
    assert resp.status_code == status and text in resp.text


def test_auth(emulator: Emulator) -> None:
    assert get(emulator, headers={}, coin="BTC").status_code == 401
    assert get(emulator, headers={"X-API-Key": "wrong"}, coin="BTC").status_code == 401
    emulator.handler("cayolargo").auth_header, emulator.handler("cayolargo").auth_prefix = (
        "Authorization",
        "Bearer ",
    )
    assert get(emulator, coin="BTC").status_code == 401  # the old header is no longer the credential
    ok = get(emulator, headers={"Authorization": f"Bearer {emulator.api_key}"}, coin="BTC")
    assert ok.status_code == 200


def test_no_from_is_the_latest_snapshot_only(emulator: Emulator) -> None:
    latest = rows(emulator, coin="BTC")
    # today = 2026-05-17: the last snapshot is 2026-05-16 23:50, the perpetual and three quarterlies
    assert {r["timestamp"] for r in latest} == {"2026-05-16T23:50:00Z"}
    assert [r["instrument_id"] for r in latest] == [
        "BTC-25DEC26",
        "BTC-25SEP26",
        "BTC-26JUN26",
        "BTC-PERPETUAL",
    ]


def test_default_limit_order_and_boundaries(emulator: Emulator) -> None:
    got = rows(emulator, coin="ETH", **{"from": "2026-02-01T00:00:00Z"})
    assert len(got) == 500  # default limit
    keys = [(r["timestamp"], r["instrument_id"]) for r in got]
    assert keys == sorted(keys)  # by timestamp, then instrument
    assert all(r["timestamp"][14:16] in ("00", "10", "20", "30", "40", "50") for r in got)
    assert all(r["timestamp"].endswith(":00Z") for r in got)
    assert len(rows(emulator, coin="ETH", limit=5000, **{"from": "2026-02-01T00:00:00Z"})) == 5000


def test_from_and_to_are_inclusive_and_instrument_id_filters(emulator: Emulator) -> None:
    got = rows(emulator, coin="BTC", **{"from": "2026-03-10T00:00:00Z", "to": "2026-03-10T01:00:00Z"})
    assert len(got) == 7 * 4  # 00:00 .. 01:00 inclusive, four instruments each
    perp = rows(
        emulator,
        coin="BTC",
        instrument_id="BTC-PERPETUAL",
        **{"from": "2026-03-10T00:00:00Z", "to": "2026-03-10T01:00:00Z"},
    )
    assert len(perp) == 7 and {r["instrument_id"] for r in perp} == {"BTC-PERPETUAL"}
    assert rows(emulator, coin="SOL", **{"from": "2026-03-10T00:00:00Z"}) == []  # documented, no data here
    assert rows(emulator, coin="BTC", **{"from": "2022-01-01T00:00:00Z", "to": "2022-02-01T00:00:00Z"}) == []


def test_a_quarterly_expires_inside_the_range_then_disappears(emulator: Emulator) -> None:
    got = rows(emulator, coin="BTC", **{"from": "2026-03-27T07:50:00Z", "to": "2026-03-27T08:00:00Z"})
    before = {r["instrument_id"]: r for r in got if r["timestamp"] == "2026-03-27T07:50:00Z"}
    after = {r["instrument_id"] for r in got if r["timestamp"] == "2026-03-27T08:00:00Z"}
    assert set(before) == {"BTC-27MAR26", "BTC-26JUN26", "BTC-25SEP26", "BTC-PERPETUAL"}
    assert after == {"BTC-26JUN26", "BTC-25SEP26", "BTC-25DEC26", "BTC-PERPETUAL"}  # delisted, next listed
    mar = before["BTC-27MAR26"]
    assert mar["expiration_timestamp"] == "2026-03-27T08:00:00Z"  # last Friday of March, 08:00 UTC
    assert mar["contract_type"] == "FUTURES" and mar["funding_rate"] is None and mar["funding_8h"] is None
    # ten minutes before expiry the basis has decayed to almost nothing (< 0.01 %)
    assert abs(mar["mark_price"] / mar["index_price"] - 1) < 1e-4
    perp = before["BTC-PERPETUAL"]
    assert perp["contract_type"] == "PERPETUALS" and perp["expiration_timestamp"] == "3000-01-01T00:00:00Z"
    assert perp["contract_size"] == 10.0
    eth = rows(emulator, coin="ETH")[0]
    assert eth["contract_size"] == 1.0


def test_snapshots_derive_from_the_real_binance_sample(emulator: Emulator) -> None:
    (perp,) = rows(
        emulator,
        coin="BTC",
        instrument_id="BTC-PERPETUAL",
        **{"from": "2024-03-14T01:00:00Z", "to": "2024-03-14T01:00:00Z"},
    )
    con = duckdb.connect()
    try:
        last_close, mark_close = con.execute(
            f"select last_close, mark_close from read_parquet('{DATA / 'binance_usdm_1h.parquet'}') "
            "where symbol = 'BTCUSDT' and open_time = '2024-03-14 00:00:00+00'"
        ).fetchone() or (None, None)
        settled = con.execute(
            f"select last_funding_rate from read_parquet('{DATA / 'binance_usdm_funding.parquet'}') "
            "where symbol = 'BTCUSDT' and calc_time in ('2024-03-14 00:00:00+00', '2024-03-14 08:00:00+00') "
            "order by calc_time"
        ).fetchall()
    finally:
        con.close()
    # a whole-hour snapshot carries the real close of the hour that just ended
    assert last_close == 72900.0  # per shared/data/real/README.md
    assert perp["last_price"] == last_close and perp["mark_price"] == mark_close
    # funding_8h = the last settled real rate; funding_rate = interpolated 1/8 of the way to the next
    f0, f8 = settled[0][0], settled[1][0]
    assert perp["funding_8h"] == f0
    assert perp["funding_rate"] == pytest.approx(f0 + (f8 - f0) / 8)
    # index = mark / (1 + funding - 0.01 %), the derived index of the Aperiodic emulator
    assert perp["index_price"] == pytest.approx(mark_close / (1 + perp["funding_rate"] - 0.0001))


def test_dated_future_mark_is_index_times_decaying_carry(emulator: Emulator) -> None:
    got = rows(emulator, coin="BTC", **{"from": "2026-01-15T12:00:00Z", "to": "2026-01-15T12:00:00Z"})
    by_id = {r["instrument_id"]: r for r in got}
    perp = by_id["BTC-PERPETUAL"]
    funding = perp["funding_rate"]
    ts = datetime(2026, 1, 15, 12, tzinfo=UTC)
    for rank, iid in enumerate(("BTC-27MAR26", "BTC-26JUN26", "BTC-25SEP26")):
        row = by_id[iid]
        expiry = datetime.fromisoformat(row["expiration_timestamp"].replace("Z", "+00:00"))
        dte = (expiry - ts).total_seconds() / 86400
        carry = min(max(0.04 + 0.6 * funding * 3 * 365, -0.10), 0.35) + 0.005 * rank  # README formula
        assert row["mark_price"] == pytest.approx(perp["index_price"] * (1 + carry * dte / 365))
        assert row["index_price"] == perp["index_price"]  # one index per coin
        assert row["bid_price"] < row["mark_price"] < row["ask_price"]
        assert row["open_interest"] > 0 and row["estimated_delivery_price"] == row["index_price"]


def test_plan_envelope_and_missing_field_fault(emulator: Emulator) -> None:
    params = {"coin": "BTC", "from": "2026-03-10T00:00:00Z", "to": "2026-03-10T00:00:00Z"}
    assert all("estimated_delivery_price" in r for r in rows(emulator, **params))
    emulator.handler("cayolargo").plan = "pro"
    assert not any("estimated_delivery_price" in r for r in rows(emulator, **params))
    emulator.handler("cayolargo").envelope = "data"
    body = get(emulator, **params).json()
    assert set(body) == {"data", "count"} and body["count"] == 4 and len(body["data"]) == 4
    emulator.handler("cayolargo").envelope = None
    emulator.faults.inject("missing_field", match="coin=BTC", field="index_price")
    assert not any("index_price" in r for r in rows(emulator, **params))
    assert all("index_price" in r for r in rows(emulator, **params))  # used up
