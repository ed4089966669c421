"""The emulator's wire protocol and data rules, checked with plain ``requests``.

Expected prices come from the shipped sample read with DuckDB, or are counted by hand.
"""

from __future__ import annotations

import io
import itertools
import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

import pipelines.emulator.market_data as md
from pipelines.emulator import Emulator, derivative_price_table

SAMPLE_1H = Path(md.__file__).parent / "data" / "binance_usdm_1h.parquet"
BTC = "perpetual-BTC-USDT:USDT"
ETH = "perpetual-ETH-USDT:USDT"
EXPECTED_COLUMNS = [
    "time",
    "last_price",
    "index_price",
    "mark_price",
    "last_price_pct_change",
    "index_price_pct_change",
    "mark_price_pct_change",
    "mark_index_pct_change_ratio",
    "mark_last_pct_change_ratio",
    "index_last_pct_change_ratio",
]


def params(**overrides: str) -> dict[str, str]:
    base = {
        "timestamp": "exchange",
        "interval": "1h",
        "exchange": "binance-futures",
        "symbol": BTC,
        "start_date": "2025-01-01",
        "end_date": "2025-01-31",
    }
    base.update(overrides)
    return base


def listing(emu: Emulator, key: str | None = "default", **overrides: str) -> requests.Response:
    headers = {"X-API-KEY": emu.api_key if key == "default" else key} if key else {}
    return requests.get(
        f"{emu.base_url('aperiodic')}/data/derivative_price",
        params=params(**overrides),
        headers=headers,
        timeout=10,
    )


def file_urls(emu: Emulator, **overrides: str) -> list[dict[str, Any]]:
    response = listing(emu, **overrides)
    assert response.status_code == 200, response.text
    files: list[dict[str, Any]] = response.json()["files"]
    return files


def one_url(emu: Emulator, **overrides: str) -> str:
    files = file_urls(emu, **overrides)
    assert len(files) == 1
    return str(files[0]["url"])


def read_table(body: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(body))


def sample(symbol: str, start: str, end: str) -> list[tuple[Any, ...]]:
    """Real hours [start, end) straight from the shipped sample."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(
        "SELECT open_time, last_open, last_close, mark_open, mark_close FROM read_parquet(?) "
        "WHERE symbol = ? AND open_time >= CAST(? AS TIMESTAMPTZ) AND open_time < CAST(? AS TIMESTAMPTZ) "
        "ORDER BY open_time",
        [str(SAMPLE_1H), symbol, start + "+00", end + "+00"],
    ).fetchall()


def assert_json_error(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], list)
    return body


# -- auth and parameter errors ------------------------------------------------------------------


def test_missing_and_unknown_key_are_401(emu: Emulator) -> None:
    assert_json_error(listing(emu, key=None), 401)
    assert_json_error(listing(emu, key="not-a-key"), 401)
    r = requests.get(f"{emu.base_url('aperiodic')}/metadata/symbols", params={"exchange": "binance-futures"})
    assert_json_error(r, 401)


def test_configurable_keys(emu: Emulator) -> None:
    emu.api_keys.add("second-key")
    try:
        assert listing(emu, key="second-key").status_code == 200
    finally:
        emu.api_keys.discard("second-key")
    assert listing(emu, key="second-key").status_code == 401


def test_parameter_errors(emu: Emulator) -> None:
    query = params()
    del query["symbol"]
    r = requests.get(
        f"{emu.base_url('aperiodic')}/data/derivative_price", params=query, headers={"X-API-KEY": emu.api_key}
    )
    assert any("symbol" in d for d in assert_json_error(r, 400)["details"])

    assert_json_error(listing(emu, start_date="2025/01/01"), 400)
    assert_json_error(listing(emu, start_date="20250101"), 400)
    assert_json_error(listing(emu, interval="2h"), 400)
    assert_json_error(listing(emu, timestamp="local"), 400)
    body = assert_json_error(listing(emu, start_date="2025-02-01", end_date="2025-01-31"), 400)
    assert any("end_date" in d for d in body["details"])
    assert_json_error(listing(emu, exchange="nasdaq"), 400)
    assert_json_error(listing(emu, symbol="perpetual-DOGE-USDT:USDT"), 404)
    assert_json_error(listing(emu, exchange="okx-perps"), 404)  # known venue, no such symbol here


@pytest.mark.parametrize("interval", ["15s", "30s"])
def test_sub_minute_interval_not_in_plan(emu: Emulator, interval: str) -> None:
    body = assert_json_error(listing(emu, interval=interval), 403)
    assert body["code"] == "interval_not_in_plan"


def test_unknown_route_is_json_404(emu: Emulator) -> None:
    r = requests.get(f"{emu.base_url('aperiodic')}/data/ohlcv_v9", headers={"X-API-KEY": emu.api_key})
    assert_json_error(r, 404)


def test_symbols(emu: Emulator) -> None:
    r = requests.get(
        f"{emu.base_url('aperiodic')}/metadata/symbols",
        params={"exchange": "binance-futures"},
        headers={"X-API-KEY": emu.api_key},
    )
    assert r.status_code == 200
    assert r.json()["exchange"] == "binance-futures"
    assert set(r.json()["symbols"]) == {BTC, ETH}
    r = requests.get(
        f"{emu.base_url('aperiodic')}/metadata/symbols",
        params={"exchange": "nyse"},
        headers={"X-API-KEY": emu.api_key},
    )
    assert_json_error(r, 400)


# -- listing: monthly vs daily, order, bounds ----------------------------------------------------


def test_monthly_then_daily_after_cutover(emu: Emulator) -> None:
    files = file_urls(emu, start_date="2026-03-30", end_date="2026-05-20")
    monthly = sorted((f["year"], f["month"]) for f in files if "day" not in f)
    daily = sorted((f["year"], f["month"], f["day"]) for f in files if "day" in f)
    assert monthly == [(2026, 3), (2026, 4)]
    # today = 2026-05-17: complete days 1..16 only.
    assert daily == [(2026, 5, d) for d in range(1, 17)]
    keys = [(f["year"], f["month"], f.get("day", 0)) for f in files]
    assert keys != sorted(keys)  # not chronological (clients must not rely on order)
    # Deterministic order (URLs differ only by signing time).
    again = file_urls(emu, start_date="2026-03-30", end_date="2026-05-20")
    assert [(f["year"], f["month"], f.get("day")) for f in again] == [
        (f["year"], f["month"], f.get("day")) for f in files
    ]


def test_custom_today_moves_the_cutover() -> None:
    with Emulator(today=date(2026, 3, 10)) as emu:
        files = file_urls(emu, start_date="2026-02-27", end_date="2026-03-31")
    assert sorted((f["year"], f["month"], f.get("day")) for f in files) == [(2026, 2, None)] + [
        (2026, 3, d) for d in range(1, 10)
    ]


def test_nothing_listed_before_data_or_after_today(emu: Emulator) -> None:
    assert file_urls(emu, start_date="2021-01-01", end_date="2022-12-31") == []
    assert file_urls(emu, start_date="2026-05-17", end_date="2026-12-31") == []
    files = file_urls(emu, start_date="2022-12-15", end_date="2023-01-15")
    assert [(f["year"], f["month"]) for f in files] == [(2023, 1)]


def test_monthly_file_holds_whole_month_daily_file_whole_day(emu: Emulator) -> None:
    body = requests.get(one_url(emu, start_date="2025-02-10", end_date="2025-02-11"), timeout=10).content
    assert read_table(body).num_rows == 28 * 24
    body = requests.get(one_url(emu, start_date="2026-05-03", end_date="2026-05-03"), timeout=10).content
    table = read_table(body)
    assert table.num_rows == 24
    assert table["time"][0].as_py() == datetime(2026, 5, 3)


# -- presigned file host ---------------------------------------------------------------------------


def test_file_download_format(emu: Emulator) -> None:
    url = one_url(emu)
    parts = urlsplit(url)
    assert (
        parts.path
        == "/files/derivative-metrics/binance-futures/1h/exchange/perpetual-BTC-USDT%3AUSDT/2025-01.parquet"
    )
    q = parse_qs(parts.query)
    assert q["X-Amz-Expires"] == ["300"]
    assert q["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert q["X-Amz-SignedHeaders"] == ["host"]
    signed = datetime.strptime(q["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((signed - datetime.now(UTC)).total_seconds()) < 60

    r = requests.get(url, timeout=10)  # no API key needed
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert int(r.headers["Content-Length"]) == len(r.content)
    table = read_table(r.content)
    assert table.column_names == EXPECTED_COLUMNS
    assert table.schema.field("time").type == pa.timestamp("us")  # naive, UTC implied
    assert all(table.schema.field(c).type == pa.float64() for c in EXPECTED_COLUMNS[1:])
    assert table.num_rows == 31 * 24


def test_presigned_url_expires_after_300_seconds(emu: Emulator) -> None:
    url = one_url(emu)
    emu.clock.advance(250)
    assert requests.get(url, timeout=10).status_code == 200
    emu.clock.advance(51)  # 301 s after signing
    r = requests.get(url, timeout=10)
    assert r.status_code == 403
    assert r.headers["Content-Type"] == "application/xml"
    assert "<Code>AccessDenied</Code>" in r.text and "expired" in r.text


def test_tampered_signature_is_403(emu: Emulator) -> None:
    url = one_url(emu)
    sig = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    bad = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    r = requests.get(bad, timeout=10)
    assert r.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in r.text
    # A valid signature does not carry over to another object.
    other = url.replace("2025-01.parquet", "2025-02.parquet")
    assert requests.get(other, timeout=10).status_code == 403
    unsigned = url.split("?")[0]
    assert requests.get(unsigned, timeout=10).status_code == 403


# -- fault injection --------------------------------------------------------------------------------


def test_fault_expired_url(emu: Emulator) -> None:
    emu.faults.inject("expired_url", target="list")
    url = one_url(emu)
    signed = datetime.strptime(parse_qs(urlsplit(url).query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    assert datetime.now(UTC).replace(tzinfo=None) - signed > timedelta(seconds=300)
    assert requests.get(url, timeout=10).status_code == 403
    # Consumed: the next listing hands out good URLs again.
    assert requests.get(one_url(emu), timeout=10).status_code == 200


def test_fault_status_429_and_503(emu: Emulator) -> None:
    emu.faults.inject("status", target="list", status=429, retry_after=7)
    r = listing(emu)
    assert_json_error(r, 429)
    assert r.headers["Retry-After"] == "7"
    assert listing(emu).status_code == 200  # times=1

    emu.faults.inject("status", target="list", status=503, times=2)
    statuses = [listing(emu) for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert_json_error(statuses[0], 503)

    url = one_url(emu)
    emu.faults.inject("status", target="file", status=503, retry_after=2)
    r = requests.get(url, timeout=10)
    assert r.status_code == 503 and r.headers["Retry-After"] == "2"
    assert "<Error>" in r.text


def test_fault_match_and_forever(emu: Emulator) -> None:
    files = {f["month"]: f["url"] for f in file_urls(emu, start_date="2026-01-01", end_date="2026-03-31")}
    emu.faults.inject("status", target="file", match="2026-02", status=503, times=-1)
    for _ in range(3):
        assert requests.get(files[2], timeout=10).status_code == 503
    assert requests.get(files[1], timeout=10).status_code == 200
    assert requests.get(files[3], timeout=10).status_code == 200
    emu.faults.clear()
    assert requests.get(files[2], timeout=10).status_code == 200

    emu.faults.inject("status", target="list", match="ETH", status=503)
    assert listing(emu, symbol=BTC).status_code == 200
    assert listing(emu, symbol=ETH).status_code == 503


def test_fault_truncate(emu: Emulator) -> None:
    url = one_url(emu)
    full = requests.get(url, timeout=10).content
    emu.faults.inject("truncate", target="file")
    r = requests.get(url, timeout=10)
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) == len(r.content) == len(full) // 2
    with pytest.raises(pa.ArrowInvalid):
        read_table(r.content)


def test_fault_html_200(emu: Emulator) -> None:
    emu.faults.inject("html_200", target="list")
    r = listing(emu)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    with pytest.raises(requests.JSONDecodeError):
        r.json()
    url = one_url(emu)
    emu.faults.inject("html_200", target="file")
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.text.lstrip().startswith("<!DOCTYPE html>")


def test_fault_drift_columns(emu: Emulator) -> None:
    url = one_url(emu)
    emu.faults.inject("drift_columns")  # target any: waits for a file request
    assert listing(emu).status_code == 200
    table = read_table(requests.get(url, timeout=10).content)
    assert "index_last_pct_change_ratio" not in table.column_names
    assert "funding_rate" in table.column_names
    assert read_table(requests.get(url, timeout=10).content).column_names == EXPECTED_COLUMNS


def test_fault_drop_connection(emu: Emulator) -> None:
    url = one_url(emu)
    emu.faults.inject("drop_connection", target="file")
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url, timeout=10)
    assert requests.get(url, timeout=10).status_code == 200


def test_request_log(emu: Emulator) -> None:
    listing(emu, key=None)
    listing(emu)
    assert [(r.method, r.status) for r in emu.requests] == [("GET", 401), ("GET", 200)]
    assert emu.requests[0].path.startswith("/api/v1/data/derivative_price?")


def test_inject_validates_arguments(emu: Emulator) -> None:
    with pytest.raises(ValueError):
        emu.faults.inject("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        emu.faults.inject("status", target="queue")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        emu.faults.inject("status", times=0)


# -- preview ------------------------------------------------------------------------------------------


def test_preview_slice(emu: Emulator) -> None:
    url = f"{emu.base_url('aperiodic')}/data/preview/derivative_price"
    demo = {"X-API-KEY": "DEMO-KEY"}
    r = requests.get(url, params=params(start_date="2025-04-01", end_date="2025-12-31"), headers=demo)
    assert sorted((f["year"], f["month"]) for f in r.json()["files"]) == [(2025, 5), (2025, 6)]
    r = requests.get(
        url, params=params(interval="1d", symbol=ETH, start_date="2025-06-01", end_date="2025-06-01")
    )
    assert_json_error(r, 401)
    r = requests.get(
        url, params=params(interval="5m", start_date="2025-05-01", end_date="2025-05-31"), headers=demo
    )
    assert r.status_code == 200 and r.json()["files"] == []
    # The demo key does not open the full endpoint.
    body = assert_json_error(listing(emu, key="DEMO-KEY"), 403)
    assert body["code"] == "preview_key_only"


# -- data rules -----------------------------------------------------------------------------------------


def test_one_minute_bridge_ends_on_the_real_hour() -> None:
    hour = sample("ETHUSDT", "2025-08-12 14:00:00", "2025-08-12 15:00:00")[0]
    _, last_open, last_close, mark_open, mark_close = hour
    minutes = derivative_price_table(
        "binance-futures", ETH, "1m", "exchange", datetime(2025, 8, 12, 14), datetime(2025, 8, 12, 15)
    ).to_pylist()
    assert len(minutes) == 60
    assert minutes[-1]["time"] == datetime(2025, 8, 12, 14, 59)
    assert minutes[-1]["last_price"] == last_close  # exact, not approximately
    assert minutes[-1]["mark_price"] == mark_close
    # Minute 0 opens at the real hour open: close / (1 + pct) recovers the open.
    m0 = minutes[0]
    assert m0["last_price"] / (1 + m0["last_price_pct_change"] / 100) == pytest.approx(last_open, rel=1e-12)
    assert m0["mark_price"] / (1 + m0["mark_price_pct_change"] / 100) == pytest.approx(mark_open, rel=1e-12)
    # Each minute opens at the previous minute's close.
    for prev, cur in itertools.pairwise(minutes):
        implied_open = cur["last_price"] / (1 + cur["last_price_pct_change"] / 100)
        assert implied_open == pytest.approx(prev["last_price"], rel=1e-12)
    # Synthetic, but near the real path: the minutes stay within a few % of the hour's open.
    assert all(abs(m["last_price"] / last_open - 1) < 0.05 for m in minutes)
    hourly = derivative_price_table(
        "binance-futures", ETH, "1h", "exchange", datetime(2025, 8, 12, 14), datetime(2025, 8, 12, 15)
    ).to_pylist()[0]
    assert minutes[-1]["index_price"] == pytest.approx(hourly["index_price"], rel=1e-15)


def test_sub_hour_aggregates_end_on_the_hour() -> None:
    hour = sample("BTCUSDT", "2024-06-03 09:00:00", "2024-06-03 10:00:00")[0]
    for interval, n in (("5m", 12), ("15m", 4), ("30m", 2)):
        rows = derivative_price_table(
            "binance-futures", BTC, interval, "exchange", datetime(2024, 6, 3, 9), datetime(2024, 6, 3, 10)
        ).to_pylist()
        assert len(rows) == n
        assert rows[-1]["last_price"] == hour[2] and rows[-1]["mark_price"] == hour[4]
        growth = 1.0
        for r in rows:
            growth *= 1 + r["last_price_pct_change"] / 100
        assert growth == pytest.approx(hour[2] / hour[1], rel=1e-12)


@pytest.mark.parametrize(
    ("interval", "start", "end"),
    [
        ("4h", "2024-11-05 08:00:00", "2024-11-05 12:00:00"),
        ("1d", "2024-11-05 00:00:00", "2024-11-06 00:00:00"),
    ],
)
def test_four_hour_and_daily_final_is_last_hour_close(interval: str, start: str, end: str) -> None:
    hours = sample("BTCUSDT", start, end)
    assert len(hours) == (4 if interval == "4h" else 24)
    t0 = datetime.fromisoformat(start)
    rows = derivative_price_table(
        "binance-futures", BTC, interval, "exchange", t0, datetime.fromisoformat(end)
    ).to_pylist()
    assert len(rows) == 1 and rows[0]["time"] == t0
    row = rows[0]
    assert row["last_price"] == hours[-1][2]
    assert row["mark_price"] == hours[-1][4]
    assert row["last_price_pct_change"] == pytest.approx((hours[-1][2] / hours[0][1] - 1) * 100, rel=1e-12)
    assert row["mark_price_pct_change"] == pytest.approx((hours[-1][4] / hours[0][3] - 1) * 100, rel=1e-12)


def test_daily_buckets_align_to_utc_midnight() -> None:
    rows = derivative_price_table(
        "binance-futures", ETH, "4h", "exchange", datetime(2025, 3, 1), datetime(2025, 3, 3)
    ).to_pylist()
    assert [r["time"].hour for r in rows] == [0, 4, 8, 12, 16, 20] * 2


def test_zero_return_gives_null_ratio_not_inf() -> None:
    # BTC 2023-09-24 09:00: last open == last close in the real data.
    hour = sample("BTCUSDT", "2023-09-24 09:00:00", "2023-09-24 10:00:00")[0]
    assert hour[1] == hour[2]
    row = derivative_price_table(
        "binance-futures", BTC, "1h", "exchange", datetime(2023, 9, 24, 9), datetime(2023, 9, 24, 10)
    ).to_pylist()[0]
    assert row["last_price_pct_change"] == 0.0
    assert row["mark_last_pct_change_ratio"] is None
    assert row["index_last_pct_change_ratio"] is None
    assert row["mark_index_pct_change_ratio"] is not None


def test_no_inf_or_nan_anywhere_in_a_month() -> None:
    table = derivative_price_table(
        "binance-futures", BTC, "1h", "exchange", datetime(2023, 9, 1), datetime(2023, 10, 1)
    )
    for name in EXPECTED_COLUMNS[1:]:
        for v in table[name].to_pylist():
            assert v is None or (v == v and abs(v) != float("inf"))


def test_synthetic_minutes_are_deterministic_and_leave_global_rng_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "first"))  # generated here, not read back
    state = random.getstate()
    t0 = time.perf_counter()
    a = derivative_price_table(
        "binance-futures", ETH, "1m", "exchange", datetime(2023, 7, 1), datetime(2023, 8, 1)
    )
    elapsed = time.perf_counter() - t0
    assert random.getstate() == state
    assert a.num_rows == 31 * 24 * 60
    assert elapsed < 1.0  # a month of 1m for one symbol, uncached
    md._month_table.cache_clear()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "second"))  # generated again, not the kept one
    b = derivative_price_table(
        "binance-futures", ETH, "1m", "exchange", datetime(2023, 7, 1), datetime(2023, 8, 1)
    )
    assert a.equals(b)
    # Different hours get different paths.
    assert a["last_price_pct_change"][0].as_py() != a["last_price_pct_change"][60].as_py()


def test_table_bounds_are_half_open() -> None:
    t = derivative_price_table(
        "binance-futures", BTC, "1h", "true", datetime(2025, 12, 31, 22), datetime(2026, 1, 1, 2)
    )
    assert [v.hour for v in t["time"].to_pylist()] == [22, 23, 0, 1]
    assert (
        derivative_price_table(
            "binance-futures", BTC, "1h", "exchange", date(2025, 1, 2), date(2025, 1, 2)
        ).num_rows
        == 0
    )
    with pytest.raises(KeyError):
        derivative_price_table(
            "binance-futures", "perpetual-XRP-USDT:USDT", "1h", "exchange", date(2025, 1, 1), date(2025, 1, 2)
        )
    with pytest.raises(ValueError):
        derivative_price_table("binance-futures", BTC, "2h", "exchange", date(2025, 1, 1), date(2025, 1, 2))


def test_a_generated_month_is_kept_on_disk_and_read_back_by_the_next_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.emulator.disk_cache import folder, on_disk

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls: list[tuple[str, int]] = []

    @on_disk
    def month(symbol: str, n: int) -> pa.Table:
        calls.append((symbol, n))
        return pa.table({"symbol": [symbol] * n, "i": list(range(n))})

    first = month("BTCUSDT", 3)
    assert month("BTCUSDT", 3).equals(first)  # read back: generated once
    assert month("ETHUSDT", 3)["symbol"].to_pylist() == ["ETHUSDT"] * 3  # other arguments, its own
    assert calls == [("BTCUSDT", 3), ("ETHUSDT", 3)]
    assert len(list(folder().glob("*.pickle"))) == 2
    assert folder().parent == tmp_path / "markhouse" and folder().name.startswith("emulator-")
    for path in folder().iterdir():  # a file cut short (a killed writer) is generated again
        path.write_bytes(path.read_bytes()[:10])
    assert month("BTCUSDT", 3).equals(first) and calls[-1] == ("BTCUSDT", 3) and len(calls) == 3
