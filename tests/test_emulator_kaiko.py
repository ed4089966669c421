"""The emulator's Kaiko ``derivatives.v2/price`` protocol, checked with plain ``requests``.

Expected values come from the shipped sample (read with DuckDB), the data README, or are counted
by hand; never from the emulator's own answer.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest
import requests

import pipelines.emulator.market_data as md
from pipelines.emulator import Emulator

SAMPLE_1H = Path(md.__file__).parent / "data" / "binance_usdm_1h.parquet"
PERP = {"exchange": "bnce", "instrument_class": "perpetual-future", "instrument": "btcusdt"}
FUTURE = {"exchange": "bnce", "instrument_class": "future", "instrument": "btcusdt260327"}


def get(emu: Emulator, key: str | None = "default", **params: Any) -> requests.Response:
    headers = {"Accept": "application/json"}
    if key:
        headers["X-Api-Key"] = emu.api_key if key == "default" else key
    return requests.get(
        f"{emu.base_url('kaiko')}/v2/data/derivatives.v2/price", params=params, headers=headers, timeout=10
    )


def walk(emu: Emulator, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every row of a request chain, following next_url as given; (rows, pages)."""
    body = get(emu, **params).json()
    rows, pages = list(body["data"]), 1
    while body.get("next_url"):
        body = requests.get(body["next_url"], headers={"X-Api-Key": emu.api_key}, timeout=10).json()
        rows += body["data"]
        pages += 1
    return rows, pages


def walk_asc(
    emu: Emulator, inst: dict[str, str], interval: str, start_time: str, end_time: str, page_size: int = 1000
) -> tuple[list[dict[str, Any]], int]:
    """``walk`` of one instrument's ``interval`` rows from ``start_time`` to ``end_time``, oldest first."""
    window = {"start_time": start_time, "end_time": end_time}
    return walk(emu, **inst, interval=interval, sort="asc", page_size=page_size, **window)


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_envelope_and_defaults(emu: Emulator) -> None:
    resp = get(
        emu, **PERP, interval="1h", start_time="2024-03-01T00:00:00.000Z", end_time="2024-03-02T00:00:00Z"
    )
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert {"result", "query", "time", "timestamp", "data", "access"} <= set(body)
    assert body["result"] == "success"
    assert body["query"]["page_size"] == 100 and body["query"]["sort"] == "desc"  # documented defaults
    assert body["query"]["data_version"] == "v2" and body["query"]["commodity"] == "derivatives"
    assert len(body["data"]) == 24  # 24 hours, one page of 100 is enough...
    assert [r["timestamp"] for r in body["data"]][:2] == [ms(2024, 3, 1, 23), ms(2024, 3, 1, 22)]  # desc
    row = body["data"][0]
    assert set(row) == {"timestamp", "index_price", "mark_price", "price"}
    assert all(isinstance(row[k], str) for k in ("index_price", "mark_price", "price"))
    # ...and a page that is not full gets no next_url
    assert "next_url" not in body or body["next_url"] is None


def test_one_hour_row_is_the_real_hourly_close(emu: Emulator) -> None:
    body = get(
        emu,
        **PERP,
        interval="1h",
        sort="asc",
        page_size=1,
        start_time="2024-03-14T00:00:00Z",
        end_time="2024-03-14T01:00:00Z",
    ).json()
    (row,) = body["data"]
    assert row["timestamp"] == ms(2024, 3, 14)
    assert float(row["price"]) == 72900.0  # BTC 1h close 2024-03-14 00:00, per shared/data/real/README.md
    mark = duckdb.sql(
        f"select mark_close from read_parquet('{SAMPLE_1H}') where symbol = 'BTCUSDT' "
        "and open_time = '2024-03-14 00:00:00+00'"
    ).fetchone()
    assert mark is not None and float(row["mark_price"]) == mark[0]


def test_paging_asc_follows_next_url_with_the_token_alone(emu: Emulator) -> None:
    rows, pages = walk_asc(emu, PERP, "1m", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")
    assert len(rows) == 31 * 1440 and pages == 45  # 44,640 rows: 44 full pages and one of 640
    times = [r["timestamp"] for r in rows]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[0] == ms(2026, 3, 1) and times[-1] == ms(2026, 3, 31, 23, 59)  # end exclusive
    follow = [r.path for r in emu.requests if "continuation_token" in r.path]
    assert len(follow) == 44 and all(
        set(parse_qs(urlsplit(p).query)) == {"continuation_token"} for p in follow
    )


def test_desc_paging_gives_the_same_rows(emu: Emulator) -> None:
    window = {"start_time": "2026-02-01T00:00:00Z", "end_time": "2026-02-02T00:00:00Z"}
    asc, _ = walk(emu, **PERP, interval="1m", sort="asc", page_size=333, **window)
    desc, pages = walk(emu, **PERP, interval="1m", sort="desc", page_size=333, **window)
    assert pages == 5 and desc == list(reversed(asc)) and len(asc) == 1440


def test_a_full_last_page_still_gets_a_next_url_to_an_empty_page(emu: Emulator) -> None:
    rows, pages = walk_asc(emu, PERP, "1h", "2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z", page_size=24)
    assert len(rows) == 24 and pages == 2


def test_coarser_rows_are_the_last_minute_stamped_with_the_period_start(emu: Emulator) -> None:
    day = ("2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z")
    for inst in (PERP, FUTURE):
        minutes, _ = walk_asc(emu, inst, "1m", *day)
        by_ts = {r["timestamp"]: r for r in minutes}
        for interval, width in (("1h", 60), ("4h", 240), ("1d", 1440)):
            rows, _ = walk_asc(emu, inst, interval, *day)
            assert len(rows) == 1440 // width
            for row in rows:
                last_minute = by_ts[row["timestamp"] + (width - 1) * 60_000]
                assert {**last_minute, "timestamp": row["timestamp"]} == row


def test_index_price_can_be_null(emu: Emulator) -> None:
    # the last real hour (2026-05-17 07:00) has a last-price kline but no mark kline
    rows, _ = walk_asc(emu, PERP, "1m", "2026-05-17T06:59:00Z", "2026-05-18T00:00:00Z")
    assert len(rows) == 61  # 06:59 .. 07:59, then the data ends
    assert rows[0]["index_price"] is not None and rows[1]["index_price"] is None
    assert rows[1]["price"] is not None


def test_dated_future_lives_until_its_expiry_and_converges(emu: Emulator) -> None:
    rows, _ = walk_asc(emu, FUTURE, "1m", "2026-03-27T07:00:00Z", "2026-03-28T00:00:00Z")
    assert len(rows) == 60 and rows[-1]["timestamp"] == ms(2026, 3, 27, 7, 59)  # delivered 08:00 UTC
    last = rows[-1]
    assert math.isclose(float(last["mark_price"]), float(last["index_price"]), abs_tol=0.02)  # basis -> 0
    early = get(
        emu,
        **FUTURE,
        interval="1d",
        sort="asc",
        page_size=1,
        start_time="2025-01-01T00:00:00Z",
        end_time="2026-01-01T00:00:00Z",
    ).json()["data"]
    assert early[0]["timestamp"] == ms(2025, 9, 26)  # listed 182 days before expiry (08:00), day row
    assert not get(emu, **FUTURE, interval="1m", start_time="2026-04-01T00:00:00Z").json()["data"]


def test_unknown_quarterly_date_and_instrument_are_404(emu: Emulator) -> None:
    assert get(emu, **{**FUTURE, "instrument": "btcusdt260320"}).status_code == 404  # not a last Friday
    resp = get(emu, **{**PERP, "instrument": "dogeusdt"})
    assert resp.status_code == 404 and resp.json()["result"] == "error"


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": 0},
        {"page_size": 1001},
        {"interval": "5m"},
        {"sort": "up"},
        {"start_time": "yesterday"},
        {"instrument_class": "spot"},
        {"exchange": "nope"},
        {"start_time": "2026-01-02T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"},
    ],
)
def test_bad_parameters_are_400_with_a_json_message(emu: Emulator, params: dict[str, Any]) -> None:
    resp = get(emu, **{**PERP, **params})
    assert resp.status_code == 400
    assert resp.json()["result"] == "error" and resp.json()["message"]


def test_auth_and_access(emu: Emulator) -> None:
    assert get(emu, key=None, **PERP).status_code == 401
    assert get(emu, key="wrong-key", **PERP).status_code == 401
    assert get(emu, **{**PERP, "exchange": "okex", "instrument": "btc-usdt"}).status_code == 403


def test_injected_429_carries_retry_after_and_kaiko_body(emu: Emulator) -> None:
    emu.faults.inject("status", status=429, match="instrument=btcusdt")
    resp = get(emu, **PERP)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "1"
    assert resp.json() == {"result": "error", "message": "API rate limit reached"}
    assert get(emu, **PERP).status_code == 200


def test_repeat_faults_act_on_continuation_pages_only(emu: Emulator) -> None:
    window = {"start_time": "2026-02-01T00:00:00Z", "end_time": "2026-02-01T05:00:00Z", "sort": "asc"}
    emu.faults.inject("repeat_row")
    emu.faults.inject("repeat_next_url")
    first = get(emu, **PERP, interval="1m", page_size=100, **window).json()  # not consumed here
    second = requests.get(first["next_url"], headers={"X-Api-Key": emu.api_key}, timeout=10).json()
    assert second["data"][0] == first["data"][-1]  # the previous page's last row, again
    assert len(second["data"]) == 101
    third = requests.get(second["next_url"], headers={"X-Api-Key": emu.api_key}, timeout=10).json()
    assert third["next_url"] == second["next_url"]  # repeats the page just served
