"""The Kaiko source against the local emulator: what lands, and what faults leave behind.

Expected counts are worked out by hand from the calendar; expected prices come from the shipped
sample or from loading the same month a second, fault-free way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pyarrow as pa
import pytest

from pipelines.emulator.server import Emulator
from pipelines.http import VendorHTTPError
from pipelines.paging import PagingError
from pipelines.progress import Ticker
from pipelines.reference import Reference, VendorName
from pipelines.sources.kaiko.client import KaikoClient, PageError, parse_page
from pipelines.sources.kaiko.load import MonthValidationError, Series, fetch_month, load_months
from pipelines.sources.kaiko.load import load as load_request
from pipelines.sources.kaiko.source import KaikoCode, parse_section
from pipelines.sources.source import LoadRequest
from pipelines.symbology import parse_symbol
from pipelines.universe.instruments import UniverseInstrument
from pipelines.warehouse.lake import Warehouse
from tests.conftest import FAST_RETRY, month_counts, raw_rows

RAW = "kaiko_derivative_price"
KAIKO_RETRY = FAST_RETRY
VENUE = "binance-futures"
PERP_KEY = "perpetual-BTC-USDT:USDT"
FUT_KEY = "future-BTC-USDT:USDT-20260327"
PERP = KaikoCode("bnce", "perpetual-future", "btcusdt")
FUT = KaikoCode("bnce", "future", "btcusdt260327")
FEB, MARCH, APRIL, MAY = date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)


def perp(interval: str = "1m") -> Series:
    return Series(VENUE, PERP_KEY, PERP, interval)


def future(interval: str = "1m") -> Series:
    return Series(VENUE, FUT_KEY, FUT, interval)


@pytest.fixture
def kaiko(emulator: Emulator) -> KaikoClient:
    return KaikoClient(emulator.base_url("kaiko"), emulator.api_key, retry=KAIKO_RETRY)


def load(client: KaikoClient, warehouse: Warehouse, months: list[date], series: list[Series]):  # type: ignore[no-untyped-def]
    return load_months(client, warehouse, series, months, workers=4, progress=lambda _: None)


def page_requests(emulator: Emulator) -> list[str]:
    return [r.path for r in emulator.requests if r.path.startswith("/v2/") and r.status == 200]


def test_a_month_that_fits_one_page(emulator, kaiko, warehouse) -> None:  # type: ignore[no-untyped-def]
    report = load(kaiko, warehouse, [MARCH], [perp("1d")])
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {(PERP_KEY, "1d", "2026-03"): 31}
    assert report.pages == 1 and len(page_requests(emulator)) == 1
    first = page_requests(emulator)[0]
    assert "page_size=1000" in first and "sort=asc" in first
    assert "start_time=2026-03-01T00:00:00.000Z" in first and "end_time=2026-04-01T00:00:00.000Z" in first


def test_exactly_page_size_rows(emulator, warehouse) -> None:  # type: ignore[no-untyped-def]
    client = KaikoClient(emulator.base_url("kaiko"), emulator.api_key, retry=KAIKO_RETRY, page_size=720)
    report = load(client, warehouse, [APRIL], [perp("1h")])
    # April = 30 x 24 = 720 rows: one full page, whose next_url answers an empty page
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {(PERP_KEY, "1h", "2026-04"): 720}
    assert report.pages == 2 and report.rows == 720


def test_many_pages_and_the_load_log(emulator, kaiko, warehouse) -> None:  # type: ignore[no-untyped-def]
    report = load(kaiko, warehouse, [APRIL], [perp()])
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {
        (PERP_KEY, "1m", "2026-04"): 43_200
    }  # 30 x 1440
    assert report.pages == 44  # 43 pages of 1000 and one of 200
    with warehouse.writer() as con:
        logged = con.execute("select * exclude (loaded_at, origin) from raw.load_log").fetchall()
        dup = con.execute(
            "select count(*) from (select ts from raw.kaiko_derivative_price group by ts having count(*) > 1)"
        ).fetchone()
    assert logged == [("kaiko", VENUE, PERP_KEY, "exchange", "1m", APRIL, 43_200, 44)]
    assert dup == (0,)


def test_values_are_converted_at_the_boundary(kaiko, warehouse) -> None:  # type: ignore[no-untyped-def]
    load(kaiko, warehouse, [date(2024, 3, 1)], [perp("1h")])
    with warehouse.writer() as con:
        row = con.execute(
            "select typeof(ts), typeof(last_price), last_price from raw.kaiko_derivative_price where ts = ?",
            [datetime(2024, 3, 14, tzinfo=UTC)],
        ).fetchone()
    assert row == ("TIMESTAMP WITH TIME ZONE", "DOUBLE", 72900.0)  # the real close, per the data README


def test_an_empty_month_writes_nothing_and_keeps_what_was_there(kaiko, warehouse) -> None:  # type: ignore[no-untyped-def]
    load(kaiko, warehouse, [MARCH], [future("1h")])
    with warehouse.writer() as con:  # an April row from some earlier load
        con.execute(
            "insert into raw.kaiko_derivative_price values (?, ?, '1h', ?, ?, 1.0, 1.0, 1.0, now())",
            [VENUE, FUT_KEY, APRIL, datetime(2026, 4, 1, tzinfo=UTC)],
        )
    before = raw_rows(warehouse, RAW)
    # the future expired on 2026-03-27 08:00: April is not even asked for (issue 26: nothing expected)
    report = load(kaiko, warehouse, [MARCH, APRIL], [future("1h")])
    assert report.skipped == ["kaiko bnce future btcusdt260327 1h 2026-04: expired 2026-03-27 08:00 UTC"]
    assert raw_rows(warehouse, RAW) == before
    # until 27 March 08:00 by hand; April keeps its earlier row
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {
        (FUT_KEY, "1h", "2026-03"): 26 * 24 + 8,
        (FUT_KEY, "1h", "2026-04"): 1,
    }
    with warehouse.writer() as con:
        months = con.execute("select month from raw.load_log where instrument_key = ?", [FUT_KEY]).fetchall()
    assert months == [(MARCH,)]  # one entry per loaded partition, none for the empty answer


def test_a_null_index_price_is_loaded_as_null(kaiko, warehouse) -> None:  # type: ignore[no-untyped-def]
    load(kaiko, warehouse, [MAY], [perp("1h")])
    with warehouse.writer() as con:
        last = con.execute(
            "select ts, last_price, index_price, mark_price from raw.kaiko_derivative_price order by ts desc limit 2"
        ).fetchall()
    # the last real hour has a last-price kline but no mark (hence no index): 16 days + 8 hours
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {
        (PERP_KEY, "1h", "2026-05"): 16 * 24 + 8
    }
    assert last[0][0] == datetime(2026, 5, 17, 7, tzinfo=UTC)
    assert last[0][1] is not None and last[0][2] is None and last[0][3] is None
    assert last[1][2] is not None


def test_descending_order_requested_by_mistake_loads_the_same_rows(emulator, warehouse, tmp_path) -> None:  # type: ignore[no-untyped-def]
    asc = KaikoClient(emulator.base_url("kaiko"), emulator.api_key, retry=KAIKO_RETRY)
    load(asc, warehouse, [FEB], [perp()])
    expected = raw_rows(warehouse, RAW)
    other = Warehouse(tmp_path / "desc.sqlite")
    desc = KaikoClient(emulator.base_url("kaiko"), emulator.api_key, retry=KAIKO_RETRY, sort="desc")
    load(desc, other, [FEB], [perp()])
    assert "sort=desc" in page_requests(emulator)[-41]  # the first page of the second load
    assert raw_rows(other, RAW) == expected and len(expected) == 28 * 1440


def test_a_repeated_page_is_detected_and_nothing_is_written(emulator, kaiko, warehouse) -> None:  # type: ignore[no-untyped-def]
    load(kaiko, warehouse, [MARCH], [perp("1h")])
    before = raw_rows(warehouse, RAW)
    client = KaikoClient(emulator.base_url("kaiko"), emulator.api_key, retry=KAIKO_RETRY, page_size=100)
    emulator.faults.inject("repeat_next_url", times=1)
    with pytest.raises(
        PagingError, match="kaiko: next_url repeats an earlier page; stopping instead of looping"
    ):
        load(client, warehouse, [MARCH], [perp("1h")])
    assert len(page_requests(emulator)) == 1 + 2  # the first load's page, then two pages, no loop
    assert raw_rows(warehouse, RAW) == before


def test_a_row_repeated_across_two_pages_is_loaded_once(emulator, warehouse, tmp_path) -> None:  # type: ignore[no-untyped-def]
    client = KaikoClient(emulator.base_url("kaiko"), emulator.api_key, retry=KAIKO_RETRY, page_size=100)
    emulator.faults.inject("repeat_row", times=2)
    report = load(client, warehouse, [MARCH], [perp("1h")])
    assert report.duplicates == 2 and report.rows == 744
    clean = Warehouse(tmp_path / "clean.sqlite")
    load(client, clean, [MARCH], [perp("1h")])
    assert raw_rows(warehouse, RAW) == raw_rows(clean, RAW)


def test_two_different_rows_for_one_timestamp_are_an_error() -> None:
    from pipelines.sources.kaiko.load import validate_month

    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    rows = pa.table(
        {
            "ts": pa.array([start, start], pa.timestamp("ms", tz="UTC")),
            "last_price": [1.0, 2.0],
            "index_price": [1.0, 1.0],
            "mark_price": [1.0, 1.0],
        }
    )
    with pytest.raises(MonthValidationError, match="march: failed validation: ts: field_uniqueness"):
        validate_month(rows, "march", start, end)


def test_429_with_retry_after_is_waited_out(emulator, kaiko, warehouse) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.inject("status", status=429, retry_after=1, match="instrument=btcusdt", times=2)
    load(kaiko, warehouse, [MARCH], [perp("1h")])
    statuses = [r.status for r in emulator.requests if r.path.startswith("/v2/")]
    assert statuses == [429, 429, 200]
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {(PERP_KEY, "1h", "2026-03"): 744}


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_burst_mid_month_is_retried(emulator, warehouse, status) -> None:  # type: ignore[no-untyped-def]
    client = KaikoClient(emulator.base_url("kaiko"), emulator.api_key, retry=KAIKO_RETRY, page_size=100)
    emulator.faults.inject("status", status=status, match="continuation_token", times=3)
    report = load(client, warehouse, [MARCH], [perp("1h")])
    assert report.rows == 744 and report.pages == 8  # 7 x 100 + 44
    assert [r.status for r in emulator.requests][:5] == [200, status, status, status, 200]


def test_rows_are_counted_as_pages_arrive_not_when_the_month_completes(emulator) -> None:  # type: ignore[no-untyped-def]
    """March 1h = 31 x 24 = 744 rows in 8 pages of 100 (7 x 100 + 44): the progress line shows
    them all before the month is done (issue 26: "176 pages, 0 rows")."""
    client = KaikoClient(emulator.base_url("kaiko"), emulator.api_key, retry=KAIKO_RETRY, page_size=100)
    ticker = Ticker("kaiko", "instrument-months", 1, lambda _: None)
    arrived: list[int] = []

    def count(rows: int) -> None:
        arrived.append(rows)
        ticker.rows_arrived(rows)

    fetch_month(client, (perp("1h"), MARCH), count)
    assert arrived == [100] * 7 + [44]
    assert ticker.line().startswith("kaiko: 0/1 instrument-months, 8 pages, 744 rows, ")


def test_dropped_connection_and_html_page(emulator, kaiko, warehouse) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.inject("drop_connection", match="instrument=btcusdt", times=1)
    load(kaiko, warehouse, [MARCH], [perp("1h")])
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {(PERP_KEY, "1h", "2026-03"): 744}
    emulator.faults.inject("html_200", times=1)
    with pytest.raises(VendorHTTPError) as err:
        load(kaiko, warehouse, [MARCH], [perp("1h")])
    # which page of which request, and its URL
    assert (
        "page 1: bnce btcusdt 1h 2026-03-01T00:00:00.000Z..2026-04-01T00:00:00.000Z: "
        "expected Kaiko's JSON envelope, got an HTML page"
    ) in str(err.value)
    assert f"({kaiko.price_url}?exchange=bnce&instrument_class=perpetual-future&instrument=btcusdt" in str(
        err.value
    )


def test_a_failure_mid_month_leaves_the_previous_month_intact(emulator, warehouse) -> None:  # type: ignore[no-untyped-def]
    client = KaikoClient(emulator.base_url("kaiko"), emulator.api_key, retry=KAIKO_RETRY)
    load(client, warehouse, [MARCH, APRIL], [perp(), future()])
    before = raw_rows(warehouse, RAW)
    assert len(before) == 44_640 + 43_200 + (26 * 1440 + 480)
    # every continuation page fails for good: each month breaks after its first page (the expired
    # future's April has no page to continue, and loads: issue 24)
    emulator.faults.inject("status", status=503, match="continuation_token", times=-1)
    failed = load(client, warehouse, [MARCH, APRIL], [perp(), future()]).failed
    assert [f.label for f in failed] == [
        "kaiko bnce perpetual-future btcusdt 1m 2026-03",
        "kaiko bnce future btcusdt260327 1m 2026-03",
        "kaiko bnce perpetual-future btcusdt 1m 2026-04",
    ]
    for f in failed:
        assert "HTTP 503" in str(f.error) and "gave up after 4 attempts" in str(f.error)
    assert raw_rows(warehouse, RAW) == before


def test_a_wrong_key_is_final_and_never_shown(emulator, warehouse, caplog) -> None:  # type: ignore[no-untyped-def]
    secret = "kk-live-4b8e1f0a9c7d2e35"
    caplog.set_level(logging.DEBUG)
    client = KaikoClient(emulator.base_url("kaiko"), secret, retry=KAIKO_RETRY)
    with pytest.raises(VendorHTTPError, match="HTTP 401") as err:
        load(client, warehouse, [MARCH], [perp("1h")])
    emulator.api_keys.add(secret)
    emulator.faults.inject("status", status=503, times=1)
    load(client, warehouse, [MARCH], [perp("1h")])
    assert secret not in caplog.text + str(err.value)
    data = b"".join(p.read_bytes() for p in warehouse.path.parent.rglob("*") if p.is_file())
    assert secret.encode() not in data


def test_parse_page_converts_without_rows_in_python() -> None:
    body = (
        b'{"result": "success", "query": {"page_size": 2},\n "data": [\n'
        b'  {"timestamp": 1651149360000, "index_price": null, "mark_price": "39707.8", "price": "39709.7"},\n'
        b'  {"timestamp": 1651149300000, "index_price": "39713.3", "mark_price": "39745.9", "price": "39767",'
        b' "extra": 1}\n ],\n "access": {}, "next_url": "https://x/v2/p?continuation_token=abc"}'
    )
    page = parse_page(body)
    assert page["next_url"] == "https://x/v2/p?continuation_token=abc"
    assert page["rows"].to_pylist() == [
        {
            "ts": datetime(2022, 4, 28, 12, 36, tzinfo=UTC),
            "last_price": 39709.7,
            "index_price": None,
            "mark_price": 39707.8,
        },
        {
            "ts": datetime(2022, 4, 28, 12, 35, tzinfo=UTC),
            "last_price": 39767.0,
            "index_price": 39713.3,
            "mark_price": 39745.9,
        },
    ]
    with pytest.raises(PageError, match='schema drift: rows lack "mark_price"'):
        parse_page(b'{"result": "success", "data": [{"timestamp": 1, "index_price": "1", "price": "2"}]}')
    with pytest.raises(PageError, match="a price is not a number"):
        parse_page(
            b'{"result": "success", "data": [{"timestamp": 1, "index_price": "1", "mark_price": "x", "price": "2"}]}'
        )
    with pytest.raises(PageError, match="unreadable JSON page"):
        parse_page(b'{"result": "success", "data": [{"timestamp": 1, "ind')


def test_reference_rows_are_written_with_the_batch_and_only_when_it_commits(kaiko, warehouse) -> None:  # type: ignore[no-untyped-def]
    """The one rule for reference data (pipelines/reference.py): in the batch's transaction. A
    batch that fails before its commit leaves neither raw nor reference rows; a committed batch
    has both; repeating it leaves one row per instrument and name."""
    instrument = UniverseInstrument(VENUE, parse_symbol(PERP_KEY), 1.0, 8.0)
    name = VendorName("kaiko", "bnce", "perpetual-future", "btcusdt", VENUE, PERP_KEY)
    reference = Reference([instrument], [name])

    def refuse() -> None:
        raise RuntimeError("killed before the commit")

    def load_once(before_commit: Callable[[], None] | None = None) -> None:
        load_months(
            kaiko, warehouse, [perp("1d")], [MARCH], progress=lambda _: None,
            before_commit=before_commit, reference=reference,
        )  # fmt: skip

    def reference_rows() -> tuple[list[tuple], list[tuple]]:
        with warehouse.writer() as con:
            return (
                con.execute("select venue, instrument_key, kind, contract_size, funding_interval_hours from ref.instrument").fetchall(),
                con.execute("select * from ref.vendor_instrument").fetchall(),
            )  # fmt: skip

    with pytest.raises(RuntimeError, match="killed before the commit"):
        load_once(refuse)
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {} and reference_rows() == ([], [])
    load_once()
    load_once()
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {(PERP_KEY, "1d", "2026-03"): 31}
    assert reference_rows() == (
        [(VENUE, PERP_KEY, "perpetual", 1.0, 8.0)],
        [("kaiko", "bnce", "perpetual-future", "btcusdt", VENUE, PERP_KEY)],
    )


# The vendor's own response example (kaiko-derivatives-price.txt), its "/*---*/" elision left out: no
# "result" field, and an access block whose access_range starts 2022-02-28 00:00 UTC (1646006400000)
DOC_EXAMPLE = b"""{
    "query": {"exchange": "okex", "instrument_class": "perpetual-future", "instrument": "btc-usdt",
              "interval": "1m", "page_size": 2, "sort": "desc", "data_version": "v2",
              "commodity": "derivatives", "request_time": "2022-04-28T12:36:34.981Z"},
    "time": "2022-04-28T12:36:37.166Z",
    "timestamp": 1651149397166,
    "data": [
        {"timestamp": 1651149360000, "index_price": null, "mark_price": "39707.8", "price": "39709.7"},
        {"timestamp": 1651149300000, "index_price": "39713.3", "mark_price": "39745.9", "price": "39767"}
    ],
    "access": {
        "access_range": {"start_timestamp": 1646006400000, "end_timestamp": null},
        "data_range": {"start_timestamp": null, "end_timestamp": null}
    }
}"""


def test_the_vendors_own_example_without_result_is_a_page() -> None:
    page = parse_page(DOC_EXAMPLE)
    assert page["rows"].num_rows == 2 and page["next_url"] is None
    assert page["rows"]["mark_price"].to_pylist() == [39707.8, 39745.9]
    assert page["access"] == (1646006400000, None)


def test_result_error_is_an_error_naming_the_message() -> None:
    with pytest.raises(PageError, match="Kaiko answered an error: Your plan does not include options"):
        parse_page(b'{"result": "error", "message": "Your plan does not include options"}')


def test_pages_without_result_load_the_same_rows(emulator, kaiko, warehouse, tmp_path) -> None:  # type: ignore[no-untyped-def]
    load(kaiko, warehouse, [MARCH], [perp("1h")])
    with_result = raw_rows(warehouse, RAW)
    emulator.handler("kaiko").send_result = False
    other = Warehouse(tmp_path / "other" / "w.sqlite")
    load(kaiko, other, [MARCH], [perp("1h")])
    assert raw_rows(other, RAW) == with_result and len(with_result) == 31 * 24


def test_a_month_outside_the_access_range_is_not_entitled_not_missing(emulator, kaiko, warehouse) -> None:  # type: ignore[no-untyped-def]
    load(kaiko, warehouse, [FEB], [perp("1h")])  # February loaded while the key still saw it
    before = raw_rows(warehouse, RAW)
    # the key now sees 2026-03-01 00:00 onwards only (1772323200000 = 2026-03-01T00:00:00Z)
    assert datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000 == 1772323200000
    emulator.handler("kaiko").access_range = (1772323200000, None)
    lines: list[str] = []
    report = load_months(kaiko, warehouse, [perp("1h")], [FEB, MARCH], progress=lines.append)
    note = "not entitled: the key's access_range is 2026-03-01 00:00 .. open"
    assert report.skipped == [f"kaiko bnce perpetual-future btcusdt 1h 2026-02: {note}"]
    assert f"kaiko bnce perpetual-future btcusdt 1h 2026-02: {note}; existing rows kept" in lines
    # February keeps its rows; March loads whole: 31 days x 24 hours
    assert [r for r in raw_rows(warehouse, RAW) if r[3] == FEB] == before
    assert month_counts(warehouse, RAW)[(PERP_KEY, "2026-03")] == 31 * 24


def test_a_month_before_the_contracts_listing_says_nothing_expected(kaiko, warehouse) -> None:  # type: ignore[no-untyped-def]
    """The emulator lists a quarterly 182 days before its 08:00 delivery (its module docstring): the
    September 2026 contract's first price is 2026-03-27 08:00, so February serves no rows and one
    one-row request says why (issue 26)."""
    sep = Series(VENUE, "future-BTC-USDT:USDT-20260925", KaikoCode("bnce", "future", "btcusdt260925"), "1h")
    said: list[str] = []
    report = load_months(kaiko, warehouse, [sep], [FEB, MARCH], workers=4, progress=said.append)
    why = "not yet listed: its first price is at 2026-03-27 08:00 UTC, nothing expected"
    assert [s for s in report.skipped if "2026-02" in s] == [
        f"kaiko bnce future btcusdt260925 1h 2026-02: {why}"
    ]
    assert f"kaiko bnce future btcusdt260925 1h 2026-02: {why}; existing rows kept" in said
    # 27 March 08:00..23:00 (16 hours) and 28..31 March (4 x 24) by hand
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {
        (sep.instrument_key, "1h", "2026-03"): 112
    }


def test_an_instruments_own_intervals_decide_its_series(emulator, warehouse) -> None:  # type: ignore[no-untyped-def]
    """The universe's per-instrument ``intervals`` override its section's (the demo's option chain
    is loaded hourly beside 1m contracts): the rows land at each instrument's own intervals."""
    june = "future-BTC-USDT:USDT-20260626"
    section = parse_section(
        {
            "intervals": ["1d"],
            "instruments": [
                {"venue": VENUE, "symbol": PERP_KEY},
                {"venue": VENUE, "symbol": june, "intervals": ["4h", "1d"]},
            ],
        },
        "u.yaml: kaiko",
    )
    resource = SimpleNamespace(
        client=lambda: KaikoClient(emulator.base_url("kaiko"), emulator.api_key, retry=KAIKO_RETRY),
        endpoint=lambda: (emulator.base_url("kaiko"), emulator.api_key, emulator),  # the embedded one
        workers=2,
    )
    request = LoadRequest(section, "derivative_price", [], [MARCH], resource, warehouse, lambda _: None)
    assert load_request(request).rows == 31 + 31 * 6 + 31
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {
        (PERP_KEY, "1d", "2026-03"): 31,
        (june, "4h", "2026-03"): 31 * 6,
        (june, "1d", "2026-03"): 31,
    }
