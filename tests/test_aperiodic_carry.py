"""Aperiodic funding, open interest and basis, from the file (the catalog's layouts) to the marts.

Every expected number is worked out by hand in the comments: funding APR =
rate x 8760 / interval hours x 100, with the interval in force at the row (ref.funding_interval:
the venue's default, or the universe's history); oi_usd = base units x mark (linear) or
contracts x USD per contract (inverse).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.checks import build_mart_checks
from pipelines.emulator.server import Emulator
from pipelines.http import VendorHTTPError
from pipelines.models import refresh_marts
from pipelines.reference import upsert_reference
from pipelines.resources import WarehouseResource
from pipelines.sources.aperiodic.client import AperiodicClient
from pipelines.sources.aperiodic.load import FileValidationError, Series, load, load_months
from pipelines.sources.aperiodic.source import DERIVED_COLUMNS, METRIC_COLUMNS, parse_section
from pipelines.sources.source import LoadRequest
from pipelines.status import ProblemKind, build_report
from pipelines.universe.instruments import UniverseError, parse_instrument
from pipelines.warehouse.lake import Warehouse
from pipelines.warehouse.serving import publish_serving
from tests.conftest import FAST_RETRY, one_row
from tests.test_cayolargo_models import PERP as DERIBIT_PERP
from tests.test_cayolargo_models import add_instruments as add_deribit_instruments
from tests.test_cayolargo_models import at as deribit_at
from tests.test_cayolargo_models import insert as insert_deribit

BTC = "perpetual-BTC-USDT:USDT"
HYPE_BTC = "perpetual-BTC-USDC:USDC"
SAMPLE = Path(__file__).resolve().parent.parent / "pipelines/emulator/data/binance_usdm_funding.parquet"


def t(day: int, hour: int = 0, month: int = 1) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def add_perpetual(con: Any, venue: str = "binance-futures", key: str = BTC, **entry: Any) -> None:
    """ref.instrument and ref.funding_interval as a universe entry ``{venue, symbol, **entry}`` writes them."""
    instrument = parse_instrument({"venue": venue, "symbol": key, **entry}, "test", (venue,))
    upsert_reference(con, [instrument], [])


def add_hours(
    con: Any,
    start: datetime,
    hours: int,
    *,
    venue: str = "binance-futures",
    key: str = BTC,
    mark: float = 100.0,
) -> None:
    """Hourly Aperiodic price rows (mark 100, index 99.9) and their load_log entries."""
    months = set()
    for h in range(hours):
        ts = start + timedelta(hours=h)
        month = date(ts.year, ts.month, 1)
        months.add(month)
        con.execute(
            "insert into raw.aperiodic_derivative_price (venue, instrument_key, timestamp_type, interval, "
            "month, ts, last_price, index_price, mark_price, loaded_at) "
            "values (?, ?, 'exchange', '1h', ?, ?, ?, 99.9, ?, now())",
            [venue, key, month, ts, mark, mark],
        )
    for month in months:
        con.execute(
            "insert into raw.load_log values ('aperiodic', ?, ?, 'exchange', '1h', ?, 1, 1, now(), null)",
            [venue, key, month],
        )


def add_funding(
    con: Any,
    rows: list[tuple[datetime, float, float | None]],
    *,
    venue: str = "binance-futures",
    key: str = BTC,
) -> None:
    """(ts, funding_rate, predicted_funding_rate) rows of a 1h funding file."""
    for ts, rate, predicted in rows:
        con.execute(
            "insert into raw.aperiodic_funding (venue, instrument_key, timestamp_type, interval, month, ts, "
            "funding_rate, predicted_funding_rate, loaded_at) values (?, ?, 'exchange', '1h', ?, ?, ?, ?, now())",
            [venue, key, date(ts.year, ts.month, 1), ts, rate, predicted],
        )


def carry(con: Any, ts: datetime, key: str = BTC) -> dict[str, Any]:
    return one_row(con, "select * from marts.fct_carry where instrument_key = ? and ts = ?", [key, ts])


def funded_perpetual(
    con: Any,
    start: datetime,
    hours: int,
    funding: list[tuple[datetime, float, float | None]],
    venue: str = "binance-futures",
    key: str = BTC,
    **entry: Any,
) -> None:
    """A perpetual (universe entry ``entry``) with ``hours`` of prices from ``start`` and the
    ``funding`` rows, through January 2024's marts."""
    add_perpetual(con, venue, key, **entry)
    add_hours(con, start, hours, venue=venue, key=key)
    add_funding(con, funding, venue=venue, key=key)
    refresh_marts(con, [date(2024, 1, 1)])


def test_an_interval_change_inside_a_month_from_the_universes_history(warehouse: Warehouse) -> None:
    # Binance moves the symbol from 8 h (its venue default) to 4 h on Jan 15 00:00; one funding row
    # per hour, funding 0.01 %, predicted 0.012 %
    rows = [(t(14) + timedelta(hours=h), 0.0001, 0.00012) for h in range(48)]
    with warehouse.writer() as con:
        funded_perpetual(con, t(14), 48, rows, funding_interval_hours={date(2024, 1, 15): 4})
        before = carry(con, t(14, 16))
        # 0.0001 x 8760 / 8 x 100 = 10.95 %; predicted 0.00012 x 8760 / 8 x 100 = 13.14 %
        assert (before["funding_interval_hours"], before["funding_interval_source"]) == (8, "venue default")
        assert before["funding_annualized_pct"] == pytest.approx(10.95)
        assert before["predicted_funding_annualized_pct"] == pytest.approx(13.14)
        after = carry(con, t(15, 4))
        # 0.0001 x 8760 / 4 x 100 = 21.9 %; predicted 0.00012 x 8760 / 4 x 100 = 26.28 %
        assert (after["funding_interval_hours"], after["funding_interval_source"]) == (4, "universe")
        assert after["funding_annualized_pct"] == pytest.approx(21.9)
        assert after["predicted_funding_rate"] == 0.00012
        assert after["predicted_funding_annualized_pct"] == pytest.approx(26.28)
        # the change applies from its instant on: 23:00 is still 8 h, 00:00 is 4 h
        assert carry(con, t(14, 23))["funding_interval_hours"] == 8
        assert carry(con, t(15, 0))["funding_interval_hours"] == 4


def test_missing_funding_rows_do_not_change_the_interval(warehouse: Warehouse) -> None:
    # a symbol on 4 h funding whose file lacks 04:00..11:00: spacing would say 8 h or more; the
    # reference data says 4 h: 0.0003 x 8760 / 4 x 100 = 65.7 % at 12:00 (not 32.85 %)
    rows = [(t(20, h), 0.0003, 0.0002) for h in (0, 1, 2, 3, 12, 13)]
    with warehouse.writer() as con:
        funded_perpetual(con, t(20), 14, rows, funding_interval_hours=4)
        noon = carry(con, t(20, 12))
        assert (noon["funding_interval_hours"], noon["funding_interval_source"]) == (4, "universe")
        assert noon["funding_annualized_pct"] == pytest.approx(65.7)
        # 0.0002 x 8760 / 4 x 100 = 43.8 %
        assert noon["predicted_funding_annualized_pct"] == pytest.approx(43.8)
        hole = carry(con, t(20, 6))  # no funding row: nothing claimed
        assert hole["funding_rate"] is None and hole["funding_interval_hours"] is None
        assert hole["funding_interval_source"] is None


def test_a_venue_default_of_one_hour(warehouse: Warehouse) -> None:
    # Hyperliquid funds hourly (its documented default): -0.0025 % x 8760 / 1 x 100 = -21.9 %
    with warehouse.writer() as con:
        funded_perpetual(con, t(5), 3, [(t(5, 1), -0.000025, None)], "hyperliquid-perps", HYPE_BTC)
        row = carry(con, t(5, 1), HYPE_BTC)
        assert (row["funding_interval_hours"], row["funding_interval_source"]) == (1, "venue default")
        assert row["funding_annualized_pct"] == pytest.approx(-21.9)
        assert row["predicted_funding_rate"] is None and row["predicted_funding_annualized_pct"] is None


def test_the_universe_history_is_replaced_not_added_to(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        add_perpetual(con, funding_interval_hours={"2024-01-15T08:00:00+00:00": 1})
        add_perpetual(con, funding_interval_hours=4)
        rows = con.execute(
            "select valid_from, funding_interval_hours, source from ref.funding_interval"
        ).fetchall()
    assert rows == [(datetime(1970, 1, 1, tzinfo=UTC), 4.0, "universe")]


def test_oi_usd_of_a_linear_and_an_inverse_contract(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        # linear (Aperiodic, open interest in BTC): 1,234.5 BTC x mark 42,000 = 51,849,000 USD
        add_perpetual(con)
        add_hours(con, t(3), 1, mark=42_000.0)
        con.execute(
            "insert into raw.aperiodic_open_interest (venue, instrument_key, timestamp_type, interval, month, ts, "
            "open_interest, loaded_at) values ('binance-futures', ?, 'exchange', '1h', '2024-01-01', ?, 1234.5, now())",
            [BTC, t(3)],
        )
        # inverse (CayøLargo Deribit, open interest in contracts of 10 USD):
        # 2,500,000 contracts x 10 USD = 25,000,000 USD, whatever the price
        add_deribit_instruments(con)
        insert_deribit(
            con,
            [
                {
                    "ts": deribit_at(2),
                    "mark_price": 80_000.0,
                    "index_price": 79_990.0,
                    "open_interest": 2_500_000.0,
                    "funding_rate": 0.0001,
                }
            ],
        )
        refresh_marts(con, [date(2024, 1, 1), date(2026, 3, 1)])
        linear = carry(con, t(3))
        assert linear["open_interest"] == 1234.5
        assert linear["oi_usd"] == pytest.approx(51_849_000.0)
        inverse = carry(con, deribit_at(2), DERIBIT_PERP)
        assert inverse["oi_usd"] == pytest.approx(25_000_000.0)
        # Deribit funds every 8 h: 0.0001 x 8760 / 8 x 100 = 10.95 %
        assert inverse["funding_annualized_pct"] == pytest.approx(10.95)


# -- through the wire
# -- through the wire: the emulator's store holds hand-made files in the catalog's layouts

SOL = "perpetual-SOL-USDT:USDT"  # not in the emulator's sample: served from the store only


def write_file(
    root: Path,
    metric: str,
    symbol: str,
    table: pa.Table,
    venue: str = "binance-futures",
    month: str = "2024-01",
) -> None:
    base = root if metric == "derivative_price" else root / metric
    folder = base / venue / "1h" / "exchange" / symbol
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"{month}.parquet")


def hours(n: int) -> pa.Array:
    return pa.array([datetime(2024, 1, 1) + timedelta(hours=h) for h in range(n)], pa.timestamp("us"))


def price_file(n: int, mark: float) -> pa.Table:
    nulls = pa.nulls(n, pa.float64())
    columns = {"time": hours(n), "last_price": pa.array([mark] * n), "index_price": pa.array([mark - 5] * n)}
    columns["mark_price"] = pa.array([mark] * n)
    for name in DERIVED_COLUMNS:  # no pct changes or ratios: the carry does not read them
        columns[name] = nulls
    return pa.table(columns)


def published(metric: str, n: int, **values: float) -> pa.Table:
    """A file with every column the catalog publishes for ``metric`` (in reverse order: read by
    name), ``values`` where given, else column number k holds k + 0.5 on every row."""
    names = METRIC_COLUMNS[metric][1:]
    columns = {name: pa.array([values.get(name, k + 0.5)] * n) for k, name in enumerate(names)}
    return pa.table({**dict(reversed(columns.items())), "time": hours(n)})


def load_all(
    emu: Emulator,
    warehouse: Warehouse,
    metrics: tuple[str, ...],
    venue: str = "binance-futures",
    key: str = SOL,
) -> list[str]:
    client = AperiodicClient(emu.base_url("aperiodic"), emu.api_key, retry=FAST_RETRY)
    series, lines = [Series(venue, key, "1h", "exchange")], []
    for metric in metrics:
        load_months(client, warehouse, series, [date(2024, 1, 1)], progress=lines.append, metric=metric)
    return lines


def test_every_published_column_is_kept_and_reaches_the_marts(tmp_path: Path, warehouse: Warehouse) -> None:
    store = tmp_path / "store"
    write_file(store, "derivative_price", SOL, price_file(6, 150.0))  # mark 150, index 145
    write_file(
        store, "funding", SOL, published("funding", 6, funding_rate=0.0001, predicted_funding_rate=0.0002)
    )
    write_file(store, "open_interest", SOL, published("open_interest", 6, open_interest=1000.0))
    write_file(store, "basis", SOL, published("basis", 6, basis=5.0, basis_bps=5 / 145 * 1e4))
    with Emulator(aperiodic_files=store) as emu:
        load_all(emu, warehouse, ("derivative_price", "funding", "open_interest", "basis"))
    with warehouse.writer() as con:
        for metric in ("funding", "open_interest", "basis"):
            names = METRIC_COLUMNS[metric][1:]
            got = con.execute(f"select distinct {', '.join(names)} from raw.aperiodic_{metric}").fetchall()
            assert len(got) == 1 and len(names) in (10, 4, 8)
            fixed = {"funding_rate": 0.0001, "predicted_funding_rate": 0.0002, "open_interest": 1000.0}
            fixed |= {"basis": 5.0, "basis_bps": 5 / 145 * 1e4}
            assert got[0] == tuple(fixed.get(name, k + 0.5) for k, name in enumerate(names))
        add_perpetual(con, key=SOL)
        refresh_marts(con, [date(2024, 1, 1)])
        row = carry(con, datetime(2024, 1, 1, 2, tzinfo=UTC), SOL)
        # Binance's default 8 h: 0.0001 x 8760 / 8 x 100 = 10.95 %; predicted 0.0002 -> 21.9 %
        assert (row["funding_interval_hours"], row["funding_interval_source"]) == (8, "venue default")
        assert row["funding_annualized_pct"] == pytest.approx(10.95)
        assert row["predicted_funding_annualized_pct"] == pytest.approx(21.9)
        # 1,000 SOL x mark 150 = 150,000 USD
        assert row["oi_usd"] == pytest.approx(150_000.0)
        # the vendor's basis (5 = 150 - 145) agrees with markhouse's own on all six hours
        check = con.execute(
            "select count(*), count(*) filter (where agrees) from intermediate.int_aperiodic__basis_check"
        ).fetchone()
        assert check == (6, 6)
        # funding is not a price series: the coverage log holds the price load only
        assert con.execute("select count(*) from raw.load_log").fetchone() == (1,)


def test_a_column_the_vendor_adds_later_is_ignored_with_a_warning(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    store = tmp_path / "store"
    table = published("funding", 3, funding_rate=0.0001, predicted_funding_rate=0.0002).append_column(
        "funding_rate_twap", pa.array([1.0] * 3)
    )
    write_file(store, "funding", SOL, table)
    with Emulator(aperiodic_files=store) as emu:
        lines = load_all(emu, warehouse, ("funding",))
    assert any("['funding_rate_twap'] not in the published layout, ignored" in line for line in lines)
    with warehouse.writer() as con:
        assert con.execute("select count(*), min(funding_rate) from raw.aperiodic_funding").fetchone() == (
            3,
            0.0001,
        )


def test_a_file_without_a_required_column_fails_naming_it(tmp_path: Path, warehouse: Warehouse) -> None:
    store = tmp_path / "store"
    write_file(
        store,
        "funding",
        SOL,
        pa.table({"time": hours(2), "rate": [0.0001, 0.0001], "predicted_funding_rate": [0.0, 0.0]}),
    )
    with Emulator(aperiodic_files=store) as emu, pytest.raises(FileValidationError) as err:
        load_all(emu, warehouse, ("funding",))
    message = str(err.value)
    assert f"aperiodic funding binance-futures {SOL} 1h exchange 2024-01" in message
    assert "unexpected columns ['rate'], missing ['funding_rate']" in message


@pytest.mark.parametrize(
    ("metric", "column", "bad"),
    [("funding", "funding_rate", float("nan")), ("open_interest", "open_interest", float("inf"))],
)
def test_a_non_finite_value_is_rejected_naming_file_column_and_time(
    tmp_path: Path, warehouse: Warehouse, metric: str, column: str, bad: float
) -> None:
    store = tmp_path / "store"
    values = [0.0001, 0.0001, bad, 0.0001, bad, 0.0001]
    write_file(store, metric, SOL, pa.table({"time": hours(6), column: pa.array(values)}))
    with Emulator(aperiodic_files=store) as emu, pytest.raises(FileValidationError) as err:
        load_all(emu, warehouse, (metric,))
    message = str(err.value)
    assert f"aperiodic {metric} binance-futures {SOL} 1h exchange 2024-01" in message
    assert column in message and "2024-01-01 02:00:00" in message  # the first bad row, hour 2
    with warehouse.writer() as con:
        assert con.execute(f"select count(*) from raw.aperiodic_{metric}").fetchone() == (0,)


def test_a_venue_the_metric_does_not_cover(tmp_path: Path, emulator: Emulator, warehouse: Warehouse) -> None:
    entry = {"venue": "hyperliquid-perps", "symbol": HYPE_BTC}
    named = {"metrics": ["derivative_price", "funding"], "instruments": [entry]}
    with pytest.raises(UniverseError) as err:  # asked for by name: refused before any run
        parse_section(named, "u.yaml: aperiodic")
    assert "u.yaml: aperiodic.instruments[0]: Aperiodic funding does not cover hyperliquid-perps; " in str(
        err.value
    )
    assert "it covers binance-futures, okx-perps" in str(err.value)
    # every metric (the default): funding is skipped for it with a warning, open interest is asked for
    section = parse_section({"instruments": [entry]}, "u.yaml: aperiodic")
    lines: list[str] = []
    resource = SimpleNamespace(
        client=lambda: AperiodicClient(emulator.base_url("aperiodic"), emulator.api_key, retry=FAST_RETRY),
        endpoint=lambda: (emulator.base_url("aperiodic"), emulator.api_key, emulator),  # the embedded one
        workers=2,
    )
    request = LoadRequest(section, "funding", [], [date(2024, 1, 1)], resource, warehouse, lines.append)
    assert load(request).rows == 0
    assert (
        lines[0]
        == f"aperiodic funding: hyperliquid-perps {HYPE_BTC} skipped: the metric covers binance-futures, okx-perps"
    )
    assert not any("/data/funding" in r.path for r in emulator.requests)
    # and the emulator, like the vendor is assumed to, refuses the listing
    client = resource.client()
    with pytest.raises(VendorHTTPError) as refused:
        client.list_files(
            Series("hyperliquid-perps", HYPE_BTC, "1h", "exchange"),
            date(2024, 1, 1),
            date(2024, 1, 31),
            "funding",
        )
    assert refused.value.status == 400 and "for funding: expected one of binance-futures, okx-perps" in str(
        refused.value
    )


# -- the emulator's real Binance funding


def test_real_binance_funding_arrives_untouched_one_row_per_hour(aperiodic, warehouse: Warehouse) -> None:  # type: ignore[no-untyped-def]
    series = [Series("binance-futures", BTC, "1h", "exchange")]
    for metric in ("derivative_price", "funding", "open_interest"):
        load_months(aperiodic, warehouse, series, [date(2024, 3, 1)], progress=lambda _: None, metric=metric)
    with warehouse.writer() as con:
        # the shipped sample, read independently: 31 days x 3 settlements; each hour's row carries
        # the last rate settled at or before its start (asof join), so a settlement hour its own
        real = con.execute(
            f"select calc_time, last_funding_rate from read_parquet('{SAMPLE}') where symbol = 'BTCUSDT'"
        ).fetchall()
        con.execute("create temp table real_funding (ts timestamptz, rate double)")
        con.executemany("insert into real_funding values (?, ?)", real)
        counts = con.execute(
            "select count(*), count(*) filter (where f.funding_rate = r.rate), "
            "count(*) filter (where f.ts = r.ts) from raw.aperiodic_funding as f "
            "asof join real_funding as r on f.ts >= r.ts"
        ).fetchone()
        assert counts == (744, 744, 93)
        add_perpetual(con)
        refresh_marts(con, [date(2024, 3, 1)])
        seen = con.execute(
            "select distinct funding_interval_hours, funding_interval_source from marts.fct_carry where funding_rate is not null"
        ).fetchall()
        assert seen == [(8.0, "venue default")]
        assert con.execute("select count(predicted_funding_rate) from marts.fct_carry").fetchone() == (744,)
        # open interest (derived, in BTC) on every hour, priced at the hour's mark
        oi = con.execute(
            "select count(*), count(oi_usd), min(open_interest), max(open_interest), "
            "max(abs(oi_usd - open_interest * mark_price)) from marts.fct_carry"
        ).fetchone()
        assert oi is not None
        assert oi[0] == 744 and oi[1] == 744
        # the derived series stays within its level 80,000 BTC x (1 +- 12 %) x (1 +- 2 %)
        assert 80_000 * 0.88 * 0.98 <= oi[2] <= oi[3] <= 80_000 * 1.12 * 1.02
        assert oi[4] == pytest.approx(0.0)


def test_a_drifted_funding_file_loads_without_the_new_column(
    aperiodic, emulator, warehouse: Warehouse
) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.inject("drift_columns", target="file", match="/funding/", times=-1)
    series, lines = [Series("binance-futures", BTC, "1h", "exchange")], []
    load_months(aperiodic, warehouse, series, [date(2024, 3, 1)], progress=lines.append, metric="funding")
    expected = f"aperiodic funding binance-futures {BTC} 1h exchange 2024-03: column(s) ['funding_interval_hours'] not in the published layout, ignored"
    assert expected in lines
    with warehouse.writer() as con:
        assert con.execute("select count(*) from raw.aperiodic_funding").fetchone() == (744,)


def test_the_emulators_non_finite_fault_on_a_funding_file_is_refused(
    aperiodic, emulator, warehouse: Warehouse
) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.inject(
        "non_finite", target="file", match="/funding/", field="funding_rate", value=float("-inf"), times=-1
    )
    series = [Series("binance-futures", BTC, "1h", "exchange")]
    with pytest.raises(FileValidationError) as err:
        load_months(
            aperiodic, warehouse, series, [date(2024, 3, 1)], progress=lambda _: None, metric="funding"
        )
    # the fault spoils the file's first row: March 1 00:00
    assert "funding_rate is -inf at time 2024-03-01 00:00:00" in str(err.value)
    with warehouse.writer() as con:
        assert con.execute("select count(*) from raw.aperiodic_funding").fetchone() == (0,)


# -- the vendor cross-check: Aperiodic's basis metric against mark - index of its prices


def test_the_basis_cross_check_fails_on_a_wrong_value(warehouse: Warehouse, tmp_path: Path) -> None:
    import dagster as dg

    # mark 100, index 99.9: basis 0.1 on each of three hours; the vendor says 0.1, 0.1 and 0.6 (wrong
    # by 0.5 = 0.5 / 99.9 x 10,000 = 50.05 bps of the index, far beyond the 0.01 bps tolerance)
    with warehouse.writer() as con:
        add_perpetual(con)
        add_hours(con, t(10), 3)
        for h, basis in enumerate((0.1, 0.1, 0.6)):
            con.execute(
                "insert into raw.aperiodic_basis (venue, instrument_key, timestamp_type, interval, month, ts, "
                "basis, loaded_at) values ('binance-futures', ?, 'exchange', '1h', '2024-01-01', ?, ?, now())",
                [BTC, t(10, h), basis],
            )
        refresh_marts(con, [date(2024, 1, 1)])
        serving = publish_serving(con, tmp_path / "serving.duckdb").path
    as_of = t(10, 3)
    report = build_report(serving, as_of=as_of, max_age_hours=36)
    problems = [p.text for p in report.problems if p.kind is ProblemKind.VENDOR_BASIS]
    assert problems == [
        f"aperiodic binance-futures {BTC} 1h exchange: the vendor's basis disagrees with mark - index "
        "on 1 of 3 intervals (worst 50.1 bps of the index, first 2024-01-10 02:00)"
    ]
    # the asset check says the same, as an error (non-blocking) on marts/fct_carry
    checks = build_mart_checks(36, 25, lambda: as_of)
    specs = [dg.AssetSpec(["marts", m]) for m in ("fct_carry", "rpt_coverage", "rpt_vendor_divergence")]
    resource = WarehouseResource(path=str(warehouse.path), serving_path=str(serving))
    key = dg.AssetCheckKey(dg.AssetKey(["marts", "fct_carry"]), "vendor_basis_agrees")
    job = dg.define_asset_job("check", selection=dg.AssetSelection.checks(key))
    defs = dg.Definitions(assets=specs, asset_checks=checks, jobs=[job], resources={"warehouse": resource})
    result = defs.resolve_job_def("check").execute_in_process()
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity is dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["problems"].value == problems
    # the right value: nothing to report
    with warehouse.writer() as con:
        con.execute("update raw.aperiodic_basis set basis = 0.1")
        refresh_marts(con, [date(2024, 1, 1)])
        publish_serving(con, serving)
    assert not [
        p
        for p in build_report(serving, as_of=as_of, max_age_hours=36).problems
        if p.kind is ProblemKind.VENDOR_BASIS
    ]
