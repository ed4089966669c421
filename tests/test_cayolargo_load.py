"""The CayøLargo source against the local emulator: paging, what lands, and what faults leave behind.

Row counts are checked against the emulator's own rows (read straight from its module) and against
numbers worked out by hand from the calendar (144 snapshots a day, 08:00 UTC expiries)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from pipelines.emulator.server import Emulator
from pipelines.http import VendorHTTPError
from pipelines.progress import Ticker
from pipelines.sources.cayolargo import emulator as emu_cayolargo
from pipelines.sources.cayolargo.client import CayoLargoClient
from pipelines.sources.cayolargo.load import PageValidationError, Walk, fetch, load_months, validate_page
from pipelines.warehouse.lake import Warehouse
from tests.conftest import FAST_RETRY, month_counts, raw_rows

RAW = "cayolargo_futures"
MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)
PERP = "perpetual-BTC-USD:BTC"


def client(emu: Emulator, **kwargs: Any) -> CayoLargoClient:
    return CayoLargoClient(emu.base_url("cayolargo"), emu.api_key, retry=FAST_RETRY, **kwargs)


def walk(c: CayoLargoClient, coin: str, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    keys: list[tuple[datetime, str]] = []
    for page in c.pages(coin, start, end):
        window = datetime.fromisoformat(page.window_from.replace("Z", "+00:00"))
        table = validate_page(page.rows, f"page {page.number}", coin, window)
        keys += list(zip(table["ts"].to_pylist(), table["instrument_id"].to_pylist(), strict=True))
    return keys


def emulator_keys(coin: str, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """What the emulator holds for [start, end), straight from its module (no paging)."""
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000) - 1
    table = emu_cayolargo.query(coin, lo, hi, 10**9)
    return [
        (datetime.fromtimestamp(t / 1000, tz=UTC), i)
        for t, i in zip(table["ts_ms"].to_pylist(), table["instrument_id"].to_pylist(), strict=True)
    ]


def t(day: int, hour: int = 0, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def load(c: CayoLargoClient, warehouse: Warehouse, months: list[date], **kwargs: Any) -> Any:
    return load_months(c, warehouse, ["BTC", "ETH"], months, workers=4, progress=lambda _: None, **kwargs)


def test_rows_are_counted_as_pages_arrive(emulator: Emulator) -> None:
    """One instrument's March: 31 days x 144 snapshots = 4,464 rows, in pages of 1,000 that each
    repeat the last row of the one before (time-window paging): 1,000 + 3 x 999 + 467 new rows in 5
    pages, all on the progress line before the month is done (issue 26)."""
    ticker = Ticker("cayolargo", "coin-months", 1, lambda _: None)
    arrived: list[int] = []

    def count(rows: int) -> None:
        arrived.append(rows)
        ticker.rows_arrived(rows)

    fetch(client(emulator, page_limit=1000), Walk("BTC", MARCH, "BTC-PERPETUAL"), count)
    assert arrived == [1000, 999, 999, 999, 467]
    assert ticker.line().startswith("cayolargo: 0/1 coin-months, 5 pages, 4,464 rows, ")


# -- paging ---------------------------------------------------------------------------------------


def test_a_page_boundary_inside_a_snapshot_loses_and_doubles_nothing(emulator: Emulator) -> None:
    start, end = t(10, 0), t(10, 6)
    got = walk(client(emulator, page_limit=7), "BTC", start, end)  # 7 rows: pages end mid-snapshot
    assert got == emulator_keys("BTC", start, end)
    assert len(got) == 36 * 4  # 6 hours x 6 snapshots x 4 instruments
    froms = [r.path for r in emulator.requests if "from=2026-03-10T00:10:00Z" in r.path]
    assert froms  # the second page asks again from the last timestamp received (00:10)


def test_limit_one_still_gets_every_row(emulator: Emulator) -> None:
    start, end = t(10, 0), t(10, 1)
    got = walk(client(emulator, page_limit=1), "BTC", start, end)
    assert got == emulator_keys("BTC", start, end) and len(got) == 6 * 4
    limits = [r.path.split("limit=")[1] for r in emulator.requests]
    # 1 row cannot hold a 4-instrument snapshot: the same window is asked with 2, 4, then 8
    assert limits[:4] == ["1", "2", "4", "8"]


def test_an_empty_range(emulator: Emulator, warehouse: Warehouse) -> None:
    assert (
        walk(client(emulator), "BTC", datetime(2022, 6, 1, tzinfo=UTC), datetime(2022, 7, 1, tzinfo=UTC))
        == []
    )
    report = load(client(emulator), warehouse, [date(2022, 6, 1)])
    assert report.rows == 0 and report.skipped == ["cayolargo BTC 2022-06", "cayolargo ETH 2022-06"]
    assert month_counts(warehouse, RAW) == {}


def test_a_range_with_an_expiry_inside_it(emulator: Emulator) -> None:
    start, end = t(27, 6), t(27, 10)
    got = walk(client(emulator, page_limit=10), "BTC", start, end)
    assert got == emulator_keys("BTC", start, end)
    mar = [ts for ts, i in got if i == "BTC-27MAR26"]
    dec = [ts for ts, i in got if i == "BTC-25DEC26"]
    assert (len(mar), max(mar)) == (12, t(27, 7, 50))  # 06:00 .. 07:50, gone at the 08:00 expiry
    assert (len(dec), min(dec)) == (12, t(27, 8))  # listed from 08:00
    assert len(got) == 24 * 4


# -- loading --------------------------------------------------------------------------------------


def test_month_loads_with_counts_worked_out_by_hand(emulator: Emulator, warehouse: Warehouse) -> None:
    report = load(client(emulator), warehouse, [MARCH, APRIL])
    got = month_counts(warehouse, RAW)
    full_march, full_april = 31 * 144, 30 * 144
    expiring = 26 * 144 + 8 * 6  # 1 Mar 00:00 .. 27 Mar 07:50
    listed = 4 * 144 + 16 * 6  # 27 Mar 08:00 .. 31 Mar 23:50
    for coin in ("BTC", "ETH"):
        assert got[(f"perpetual-{coin}-USD:{coin}", "2026-03")] == full_march
        assert got[(f"future-{coin}-USD:{coin}-20260327", "2026-03")] == expiring
        assert got[(f"future-{coin}-USD:{coin}-20260626", "2026-03")] == full_march
        assert got[(f"future-{coin}-USD:{coin}-20261225", "2026-03")] == listed
        assert got[(f"future-{coin}-USD:{coin}-20261225", "2026-04")] == full_april
        assert (f"future-{coin}-USD:{coin}-20260327", "2026-04") not in got
    assert report.rows == sum(got.values()) == 2 * (4 * full_march + 4 * full_april)
    assert report.rows == 2 * len(
        emulator_keys("BTC", t(1), t(1, month=5))
    )  # as the emulator serves (ETH alike)
    with warehouse.writer() as con:
        ref = con.execute(
            "select instrument_key, kind, expiry, contract_size, funding_interval_hours from ref.instrument "
            "where instrument_key in (?, ?)",
            [PERP, "future-BTC-USD:BTC-20260327"],
        ).fetchall()
        names = con.execute(
            "select vendor, vendor_exchange, vendor_instrument_class, vendor_instrument, venue from "
            "ref.vendor_instrument where instrument_key = ?",
            ["future-ETH-USD:ETH-20261225"],
        ).fetchall()
        log = con.execute(
            "select timestamp_type, interval, rows from raw.load_log where vendor = 'cayolargo' "
            "and instrument_key = ? and month = ?",
            [PERP, MARCH],
        ).fetchall()
        dups = con.execute(
            "select count(*) from (select instrument_key, ts from raw.cayolargo_futures group by all having count(*) > 1)"
        ).fetchone()
    assert sorted(ref) == [
        ("future-BTC-USD:BTC-20260327", "future", datetime(2026, 3, 27, 8, tzinfo=UTC), 10.0, None),
        (PERP, "perpetual", None, 10.0, 8.0),
    ]
    assert names == [("cayolargo", "deribit", "FUTURES", "ETH-25DEC26", "deribit")]
    assert log == [("exchange", "10m", full_march)]
    assert dups == (0,)


def test_same_month_twice_leaves_identical_rows(emulator: Emulator, warehouse: Warehouse) -> None:
    load(client(emulator), warehouse, [MARCH])
    first = raw_rows(warehouse, RAW)
    load(client(emulator, page_limit=333), warehouse, [MARCH])
    assert raw_rows(warehouse, RAW) == first


def test_instrument_filter_replaces_only_that_instrument(emulator: Emulator, warehouse: Warehouse) -> None:
    load(client(emulator), warehouse, [MARCH])
    with warehouse.writer() as con:
        con.execute("update raw.cayolargo_futures set mark_price = -1")
    emulator.requests.clear()
    load(client(emulator), warehouse, [MARCH], instruments=[PERP])
    assert all("instrument_id=BTC-PERPETUAL" in r.path for r in emulator.requests)
    with warehouse.writer() as con:
        fresh = dict(
            con.execute(
                "select instrument_key, min(mark_price) > 0 from raw.cayolargo_futures group by all"
            ).fetchall()
        )
    assert fresh[PERP] is True and sum(fresh.values()) == 1  # every other instrument kept its old rows


def test_a_whole_coin_month_drops_instruments_the_vendor_no_longer_serves(
    emulator: Emulator, warehouse: Warehouse
) -> None:
    load(client(emulator), warehouse, [MARCH])
    with warehouse.writer() as con:
        con.execute(
            "insert into raw.cayolargo_futures by name select * replace "
            "('future-BTC-USD:BTC-20260320' as instrument_key, 'BTC-20MAR26' as instrument_id) "
            "from raw.cayolargo_futures where instrument_key = ? limit 10",
            [PERP],
        )
    load(client(emulator), warehouse, [MARCH])
    assert ("future-BTC-USD:BTC-20260320", "2026-03") not in month_counts(warehouse, RAW)


# -- tiers, configuration, faults -----------------------------------------------------------------


def test_a_plan_without_alpha_fields_loads_them_as_null(emulator: Emulator, warehouse: Warehouse) -> None:
    emulator.handler("cayolargo").plan = "pro"
    load(client(emulator), warehouse, [APRIL])
    with warehouse.writer() as con:
        row = con.execute(
            "select count(*), count(estimated_delivery_price), count(mark_price) from raw.cayolargo_futures"
        ).fetchone()
    assert row == (2 * 4 * 30 * 144, 0, 2 * 4 * 30 * 144)


def test_a_missing_required_field_names_it_and_writes_nothing(
    emulator: Emulator, warehouse: Warehouse
) -> None:
    load(client(emulator), warehouse, [MARCH])
    before = raw_rows(warehouse, RAW)
    # a page in the middle of the BTC month (from=... only appears on later pages) lacks mark_price
    emulator.faults.inject("missing_field", match="coin=BTC&from=2026-03-1", field="mark_price", times=1)
    (failed,) = load(client(emulator, page_limit=2000), warehouse, [MARCH]).failed  # ETH loaded (issue 24)
    assert isinstance(failed.error, PageValidationError) and failed.label == "cayolargo BTC 2026-03"
    assert "cayolargo BTC 2026-03 page" in str(failed.error)
    assert "required field(s) missing: mark_price" in str(failed.error)
    assert raw_rows(warehouse, RAW) == before


def test_a_required_field_null_in_some_rows_is_named(emulator: Emulator) -> None:
    rows = [
        {**r, "index_price": None} if i == 1 else r
        for i, r in enumerate(next(client(emulator).pages("BTC", t(10), t(10, 1))).rows)
    ]
    with pytest.raises(PageValidationError, match="required field index_price is missing or null"):
        validate_page(rows, "page", "BTC", t(10))


def test_a_row_whose_type_or_expiry_disagrees_with_its_instrument_id_is_refused(emulator: Emulator) -> None:
    rows = next(client(emulator).pages("BTC", t(10), t(10, 1))).rows
    perp = next(i for i, r in enumerate(rows) if r["instrument_id"] == "BTC-PERPETUAL")
    fut = next(i for i, r in enumerate(rows) if r["instrument_id"] != "BTC-PERPETUAL")
    future_id = rows[fut]["instrument_id"]  # e.g. BTC-27MAR26: the 27th, not the 28th
    wrong_type = [{**r, "contract_type": "FUTURES"} if i == perp else r for i, r in enumerate(rows)]
    with pytest.raises(
        PageValidationError, match="BTC-PERPETUAL has contract_type FUTURES, but its name says PERPETUALS"
    ):
        validate_page(wrong_type, "page", "BTC", t(10))
    named = datetime.strptime(future_id.split("-")[1], "%d%b%y").date()
    later = (datetime(named.year, named.month, named.day, 8, tzinfo=UTC) + timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    wrong_expiry = [{**r, "expiration_timestamp": later} if i == fut else r for i, r in enumerate(rows)]
    with pytest.raises(
        PageValidationError,
        match=f"{future_id} expires {named + timedelta(days=1)}, but its name says {named}",
    ):
        validate_page(wrong_expiry, "page", "BTC", t(10))


def test_envelope_and_auth_header_are_configurable_on_both_sides(
    emulator: Emulator, warehouse: Warehouse
) -> None:
    emulator.handler("cayolargo").envelope = "data"
    emulator.handler("cayolargo").auth_header, emulator.handler("cayolargo").auth_prefix = (
        "Authorization",
        "Bearer ",
    )
    with pytest.raises(VendorHTTPError, match="HTTP 401"):
        load(client(emulator), warehouse, [APRIL])  # the default header is not what this host wants
    with pytest.raises(VendorHTTPError, match="expected a JSON list"):
        load(
            client(emulator, auth_header="Authorization", auth_prefix="Bearer ", envelope="list"),
            warehouse,
            [APRIL],
        )
    for envelope in ("auto", "data"):
        c = client(emulator, auth_header="Authorization", auth_prefix="Bearer ", envelope=envelope)
        assert load(c, warehouse, [APRIL]).rows == 2 * 4 * 30 * 144


def test_429_with_retry_after_is_waited_out(emulator: Emulator, warehouse: Warehouse) -> None:
    emulator.faults.inject("status", match="coin=ETH", status=429, retry_after=1, times=2)
    load(client(emulator), warehouse, [APRIL])
    statuses = [r.status for r in emulator.requests if "coin=ETH" in r.path]
    assert statuses[:3] == [429, 429, 200]
    assert month_counts(warehouse, RAW)[("perpetual-ETH-USD:ETH", "2026-04")] == 30 * 144


def test_dropped_connection_is_retried(emulator: Emulator, warehouse: Warehouse) -> None:
    emulator.faults.inject("drop_connection", match="coin=BTC", times=1)
    load(client(emulator), warehouse, [APRIL])
    assert month_counts(warehouse, RAW)[(PERP, "2026-04")] == 30 * 144


def test_5xx_burst_past_the_retry_budget_keeps_the_previous_month(
    emulator: Emulator, warehouse: Warehouse
) -> None:
    load(client(emulator), warehouse, [MARCH])
    before = raw_rows(warehouse, RAW)
    emulator.faults.inject("status", match="coin=ETH", status=503, times=-1)
    (failed,) = load(client(emulator), warehouse, [MARCH]).failed  # BTC loaded (issue 24)
    assert (
        isinstance(failed.error, VendorHTTPError) and failed.instruments == []
    )  # a coin-month: every instrument
    assert "503" in str(failed.error) and "gave up after 4 attempts" in str(failed.error)
    assert raw_rows(warehouse, RAW) == before


@pytest.mark.parametrize(
    ("kind", "message"), [("html_200", "expected JSON but got text/html"), ("truncate", "expected JSON")]
)
def test_a_body_that_is_not_data_is_a_clear_error(
    emulator: Emulator, warehouse: Warehouse, kind: str, message: str
) -> None:
    load(client(emulator), warehouse, [MARCH])
    before = raw_rows(warehouse, RAW)
    emulator.faults.inject(kind, match="coin=BTC", times=-1)  # type: ignore[arg-type]
    (failed,) = load(client(emulator), warehouse, [MARCH]).failed  # ETH loaded (issue 24)
    with pytest.raises(VendorHTTPError, match=message):
        raise failed.error
    assert raw_rows(warehouse, RAW) == before


def test_no_key_in_logs_errors_or_warehouse(warehouse: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    secret = "cl-live-9b8c7d6e5f4a3b2c"
    caplog.set_level(logging.DEBUG)
    with Emulator(api_keys=[secret]) as emu:
        c = CayoLargoClient(emu.base_url("cayolargo"), secret, retry=FAST_RETRY)
        emu.faults.inject("status", match="coin=BTC", status=503, times=1)
        load_months(c, warehouse, ["BTC"], [APRIL], progress=logging.getLogger("t").info)
        emu.faults.inject("status", match="coin=BTC", status=503, times=-1)
        with pytest.raises(VendorHTTPError) as err:
            load_months(c, warehouse, ["BTC"], [APRIL], progress=lambda _: None)
    text = caplog.text + str(err.value)
    assert secret not in text
    data = b"".join(p.read_bytes() for p in warehouse.path.parent.rglob("*") if p.is_file())
    assert secret.encode() not in data


def test_rows_arrive_as_arrow_with_the_documented_types(emulator: Emulator) -> None:
    page = next(client(emulator).pages("ETH", t(10), t(10, 0, 10)))
    table = validate_page(page.rows, "page", "ETH", t(10))
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    perp = table.filter(pa.compute.equal(table["instrument_id"], "ETH-PERPETUAL")).to_pylist()[0]
    assert (perp["venue"], perp["instrument_key"], perp["funding_interval_hours"]) == (
        "deribit",
        "perpetual-ETH-USD:ETH",
        8.0,
    )
    assert perp["expiration_timestamp"] == datetime(3000, 1, 1, tzinfo=UTC)
