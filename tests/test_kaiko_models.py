"""Kaiko rows through the models: the last-minute rule against a rollup, carry formulas worked out
by hand, reference marts, and coverage of an expired future."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.emulator.server import Emulator
from pipelines.models import refresh_marts
from pipelines.reference import upsert_reference
from pipelines.sources.kaiko.client import KaikoClient
from pipelines.sources.kaiko.load import Series, load_months
from pipelines.sources.kaiko.source import KaikoCode, vendor_names
from pipelines.universe import load_universe
from pipelines.universe.instruments import parse_instrument
from pipelines.warehouse.lake import Warehouse
from tests.conftest import by_key_and_ts, insert_rows
from tests.test_kaiko_load import KAIKO_RETRY

VENUE = "binance-futures"
PERP = "perpetual-BTC-USDT:USDT"
FUT = "future-BTC-USDT:USDT-20260327"
MARCH = date(2026, 3, 1)
SERIES = {
    PERP: KaikoCode("bnce", "perpetual-future", "btcusdt"),
    FUT: KaikoCode("bnce", "future", "btcusdt260327"),
}


def load(emulator: Emulator, warehouse: Warehouse, interval: str) -> None:
    client = KaikoClient(emulator.base_url("kaiko"), emulator.api_key, retry=KAIKO_RETRY)
    series = [Series(VENUE, key, code, interval) for key, code in SERIES.items()]
    load_months(client, warehouse, series, [MARCH], progress=lambda _: None)
    with warehouse.writer() as con:
        refresh_marts(con, [MARCH])


def test_rolling_1m_up_to_1h_gives_kaikos_own_1h_rows(emulator: Emulator, tmp_path: Path) -> None:
    minutes, hours = Warehouse(tmp_path / "1m.sqlite"), Warehouse(tmp_path / "1h.sqlite")
    load(emulator, minutes, "1m")
    load(emulator, hours, "1h")
    query = (
        "select instrument_key, ts, last_price, index_price, mark_price from {} "
        "where vendor = 'kaiko' and interval = '1h' and ts < '2026-04-01' order by all"
    )
    with minutes.writer() as con:
        rolled = con.execute(query.format("marts.fct_price_interval")).fetchall()
        sources = con.execute(
            "select distinct source_interval, n_obs from marts.fct_price_interval "
            "where interval = '1h' and ts < '2026-03-27'"
        ).fetchall()
    with hours.writer() as con:
        native = con.execute(query.format("intermediate.int_price_observations")).fetchall()
    assert sources == [("1m", 60)]  # rolled up from sixty minutes
    assert len(native) == 744 + 26 * 24 + 8  # March, and the future until its 08:00 expiry
    assert rolled == native


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


def test_carry_formulas_by_hand(warehouse: Warehouse) -> None:
    fut = "future-BTC-USDT:USDT-20240131"
    expiry = datetime(2024, 1, 31, 8, tzinfo=UTC)  # Binance delivers at 08:00 UTC
    rows = [  # (key, interval, ts, last, index, mark)
        (fut, "1m", t(30, 8), 101.0, 100.0, 101.0),
        (fut, "1h", t(30, 8), 999.0, 100.0, 999.0),  # a coarser row repeating a minute: not carry
        (fut, "1m", t(31, 2), 100.25, 100.0, 100.25),
        (fut, "1m", t(31, 8), 100.0, 100.0, 100.2),
        (fut, "1m", t(31, 9), 100.0, 100.0, 100.2),
        (PERP, "1m", t(30, 8), 40.0, 40.0, 40.1),
        (PERP, "1m", t(30, 9), 40.0, None, 40.1),  # no index: no carry row
    ]
    with warehouse.writer() as con:
        con.execute(
            "insert into ref.instrument values "
            "(?, ?, 'perpetual', 'BTC', 'USDT', 'USDT', null, 1.0, 8), "
            "(?, ?, 'future', 'BTC', 'USDT', 'USDT', ?, 1.0, null)",
            [VENUE, PERP, VENUE, fut, expiry],
        )
        for key, interval in {(r[0], r[1]) for r in rows}:
            con.execute(
                "insert into raw.load_log values ('kaiko', ?, ?, 'exchange', ?, '2024-01-01', 1, 1, now(), null)",
                [VENUE, key, interval],
            )
        for key, interval, ts, last, index, mark in rows:
            con.execute(
                "insert into raw.kaiko_derivative_price values (?, ?, ?, '2024-01-01', ?, ?, ?, ?, now())",
                [VENUE, key, interval, ts, last, index, mark],
            )
        refresh_marts(con, [date(2024, 1, 1)])
        got = by_key_and_ts(
            con,
            "select instrument_key, ts, kind, dte_days, basis, basis_pct, annualized_basis_pct, "
            "funding_interval_hours, funding_annualized_pct from marts.fct_carry where vendor = 'kaiko'",
        )
    assert len(got) == 5  # four future minutes, one perpetual minute with an index
    kind, dte, basis, basis_pct, annualized, hours, funding = got[(fut, t(30, 8))]
    assert kind == "future" and dte == pytest.approx(1.0)  # 24 h before expiry
    assert basis == pytest.approx(1.0) and basis_pct == pytest.approx(1.0)  # (101 - 100) / 100 x 100
    assert annualized == pytest.approx(365.0)  # 1 % x 365 / 1 day
    assert hours is None and funding is None
    _, dte, basis, basis_pct, annualized, _, _ = got[(fut, t(31, 2))]
    assert dte == pytest.approx(0.25) and basis_pct == pytest.approx(0.25)  # 6 h before expiry
    assert annualized == pytest.approx(365.0)  # 0.25 % x 365 / 0.25 day
    _, dte, _, basis_pct, annualized, _, _ = got[(fut, t(31, 8))]
    assert dte == 0 and basis_pct == pytest.approx(0.2) and annualized is None  # at expiry
    _, dte, _, _, annualized, _, _ = got[(fut, t(31, 9))]
    assert dte == pytest.approx(-1 / 24) and annualized is None  # past its expiry
    kind, dte, basis, basis_pct, annualized, hours, funding = got[(PERP, t(30, 8))]
    assert kind == "perpetual" and dte is None and annualized is None
    assert basis == pytest.approx(0.1) and basis_pct == pytest.approx(0.25)  # 0.1 / 40 x 100
    assert hours is None and funding is None  # Kaiko's price endpoint carries no funding rate


def test_reference_marts_and_coverage_of_an_expired_future(
    emulator: Emulator, warehouse: Warehouse, tmp_path: Path
) -> None:
    path = tmp_path / "u.yaml"
    path.write_text(
        "start_month: 2026-01\nkaiko:\n  instruments:\n"
        f"    - {{venue: binance-futures, symbol: {PERP}}}\n"
        f"    - {{venue: binance-futures, symbol: {FUT}}}\n"
    )
    section = load_universe(path).section("kaiko")
    with warehouse.writer() as con:
        upsert_reference(con, section.instruments, vendor_names(section))
    load(emulator, warehouse, "1m")
    with warehouse.writer() as con:
        dim, names, coverage = (
            con.execute(sql).fetchall()
            for sql in (
                "select instrument_key, venue, kind, expiry, funding_interval_hours from marts.dim_instrument order by 1",
                "select * from marts.map_vendor_instrument where vendor = 'kaiko' order by instrument_key",
                "select instrument_key, expected_rows, loaded_rows, missing_intervals from marts.rpt_coverage "
                "where vendor = 'kaiko' and interval = '1m' order by 1",
            )
        )
    assert dim == [
        (FUT, VENUE, "future", datetime(2026, 3, 27, 8, tzinfo=UTC), None),
        (PERP, VENUE, "perpetual", None, 8.0),
    ]
    assert names == [
        ("kaiko", "bnce", "future", "btcusdt260327", VENUE, FUT),
        ("kaiko", "bnce", "perpetual-future", "btcusdt", VENUE, PERP),
    ]
    # the future's month ends at its expiry, 27 March 08:00: 26 days + 8 hours of minutes
    assert coverage == [(FUT, 37_920, 37_920, 0), (PERP, 44_640, 44_640, 0)]


def test_the_kaiko_asset_is_wired_like_the_others() -> None:
    import dagster as dg

    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey(["raw", "kaiko_derivative_price"]))
    assert node.group_name == "kaiko"
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert not node.pools  # the warehouse's own lock orders its writers (pipelines.warehouse.concurrency)
    assert isinstance(node.partitions_def, dg.MonthlyPartitionsDefinition)
    # its staging model reads it, and the marts are built from that (tests/test_definitions.py)
    staging = graph.get(dg.AssetKey(["staging", "stg_kaiko__derivative_price"]))
    assert dg.AssetKey(["raw", "kaiko_derivative_price"]) in staging.parent_keys


def test_an_option_listed_mid_month_is_expected_from_its_first_observation(warehouse: Warehouse) -> None:
    # issue 24's case: option-BTC-USD:BTC-20250425-100000-C, 1h, first seen 2025-02-24 08:00; February
    # then holds 4 days x 24 h + 16 h = 112 expected hours (not the month's 28 x 24 = 672), and the
    # one hour left out below (Feb 26 12:00) is the only one missing
    key = "option-BTC-USD:BTC-20250425-100000-C"
    first = datetime(2025, 2, 24, 8, tzinfo=UTC)
    hours = [first + timedelta(hours=h) for h in range(112)]
    hours.remove(datetime(2025, 2, 26, 12, tzinfo=UTC))
    with warehouse.writer() as con:
        option = parse_instrument({"venue": "okx-options", "symbol": key}, "test", ("okx-options",))
        upsert_reference(con, [option], [])
        columns = {
            "venue": "okx-options",
            "instrument_key": key,
            "interval": "1h",
            "loaded_at": datetime(2025, 5, 1, tzinfo=UTC),
        }
        prices = {"last_price": 0.05, "index_price": 95_000.0, "mark_price": 0.051}
        insert_rows(con, "raw.kaiko_derivative_price", [{"ts": ts, **prices} for ts in hours], **columns)
        con.execute(
            "insert into raw.load_log values ('kaiko', 'okx-options', ?, 'exchange', '1h', ?, 111, 1, ?, null)",
            [key, date(2025, 2, 1), columns["loaded_at"]],
        )
        refresh_marts(con, [date(2025, 2, 1)])
        coverage = con.execute(
            "select month, expected_rows, loaded_rows, missing_intervals, first_ts from marts.rpt_coverage "
            "where instrument_key = ? and interval = '1h'",
            [key],
        ).fetchall()
    assert coverage == [(date(2025, 2, 1), 112, 111, 1, first)]
