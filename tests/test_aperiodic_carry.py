"""Aperiodic funding and open interest, from the file to marts.fct_carry.

Every expected number is worked out by hand in the comments: funding APR =
rate x 8760 / interval hours x 100, with the interval that applied to each settlement; oi_usd =
base units x mark (linear) or contracts x USD per contract (inverse).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.emulator.server import Emulator
from pipelines.models import refresh_marts
from pipelines.sources.aperiodic.client import AperiodicClient
from pipelines.sources.aperiodic.load import Series, load_months
from pipelines.sources.aperiodic.schema import DERIVED_COLUMNS, FileValidationError
from pipelines.warehouse.lake import Warehouse
from tests.conftest import FAST_RETRY
from tests.test_cayolargo_models import PERP as DERIBIT_PERP
from tests.test_cayolargo_models import add_instruments as add_deribit_instruments
from tests.test_cayolargo_models import at as deribit_at
from tests.test_cayolargo_models import insert as insert_deribit

BTC = "perpetual-BTC-USDT:USDT"
HYPE_BTC = "perpetual-BTC-USDC:USDC"
SAMPLE = Path(__file__).resolve().parent.parent / "pipelines/emulator/data/binance_usdm_funding.parquet"


def t(day: int, hour: int = 0, month: int = 1) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def add_perpetual(con: Any, venue: str = "binance-futures", key: str = BTC, funding_hours: float = 8) -> None:
    base, quote = key.split("-")[1], key.split("-")[2].split(":")[0]
    con.execute(
        "insert into ref.instrument values (?, ?, 'perpetual', ?, ?, ?, null, 1.0, ?)",
        [venue, key, base, quote, quote, funding_hours],
    )


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
            "insert into raw.load_log values ('aperiodic', ?, ?, 'exchange', '1h', ?, 1, 1, now())",
            [venue, key, month],
        )


def add_funding(
    con: Any, events: list[tuple[datetime, float]], *, venue: str = "binance-futures", key: str = BTC
) -> None:
    for ts, rate in events:
        con.execute(
            "insert into raw.aperiodic_funding values (?, ?, 'exchange', '1h', ?, ?, ?, now())",
            [venue, key, date(ts.year, ts.month, 1), ts, rate],
        )


def carry(con: Any, ts: datetime, key: str = BTC) -> dict[str, Any]:
    cur = con.execute("select * from marts.fct_carry where instrument_key = ? and ts = ?", [key, ts])
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1, f"expected one carry row for {key} at {ts}, got {len(rows)}"
    return dict(zip(names, rows[0], strict=True))


def derivation(con: Any, ts: datetime, key: str = BTC) -> str:
    row = con.execute(
        "select funding_interval_derivation from staging.stg_aperiodic__funding where instrument_key = ? and ts = ?",
        [key, ts],
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_four_hour_funding_is_annualized_with_four_hours(warehouse: Warehouse) -> None:
    # a Binance symbol on 4 h funding: settlements 00, 04, 08, 12 every 4 hours, 0.01 % each
    with warehouse.writer() as con:
        add_perpetual(con)  # the instrument's default says 8 h: the observed 4 h must win
        add_hours(con, t(10), 16)
        add_funding(con, [(t(10, h), 0.0001) for h in (0, 4, 8, 12)])
        refresh_marts(con, [date(2024, 1, 1)])
        row = carry(con, t(10, 4))
        assert row["funding_interval_hours"] == 4
        # 0.0001 x 8760 / 4 x 100 = 21.9 % (six settlements a day: 0.06 %/day x 365)
        assert row["funding_annualized_pct"] == pytest.approx(21.9)
        # the first settlement has no gap before it: it takes the next observed interval
        first = carry(con, t(10, 0))
        assert first["funding_interval_hours"] == 4 and derivation(con, t(10, 0)) == "next"
        # hours without a settlement carry no rate and claim no interval (never forward-filled)
        between = carry(con, t(10, 1))
        assert between["funding_rate"] is None and between["funding_interval_hours"] is None
        assert between["funding_annualized_pct"] is None


def test_one_hour_funding_is_annualized_with_one_hour(warehouse: Warehouse) -> None:
    # a Binance symbol moved to 1 h funding: every hour, -0.0025 % each
    with warehouse.writer() as con:
        add_perpetual(con)
        add_hours(con, t(5), 6)
        add_funding(con, [(t(5, h), -0.000025) for h in range(6)])
        refresh_marts(con, [date(2024, 1, 1)])
        row = carry(con, t(5, 3))
        assert row["funding_interval_hours"] == 1
        # -0.000025 x 8760 / 1 x 100 = -21.9 %
        assert row["funding_annualized_pct"] == pytest.approx(-21.9)
        assert derivation(con, t(5, 3)) == "observed"


def test_a_change_of_interval_inside_a_month(warehouse: Warehouse) -> None:
    # 8 h settlements on Jan 14 (00, 08, 16), Jan 15 00:00 (8 h after 16:00), then 4 h from Jan 15
    events = [(t(14, 0), 0.0001), (t(14, 8), 0.0001), (t(14, 16), 0.0001), (t(15, 0), 0.0002)]
    events += [(t(15, 4), 0.0001), (t(15, 8), 0.0001)]
    with warehouse.writer() as con:
        add_perpetual(con)
        add_hours(con, t(14), 36)
        add_funding(con, events)
        refresh_marts(con, [date(2024, 1, 1)])
        # 16:00 -> 00:00 accrued 8 h: 0.0002 x 8760 / 8 x 100 = 21.9 %
        midnight = carry(con, t(15, 0))
        assert midnight["funding_interval_hours"] == 8
        assert midnight["funding_annualized_pct"] == pytest.approx(21.9)
        # 00:00 -> 04:00 is the first 4 h interval: 0.0001 x 8760 / 4 x 100 = 21.9 %
        four = carry(con, t(15, 4))
        assert four["funding_interval_hours"] == 4
        assert four["funding_annualized_pct"] == pytest.approx(21.9)
        # and before the change 0.0001 x 8760 / 8 x 100 = 10.95 %
        assert carry(con, t(14, 16))["funding_annualized_pct"] == pytest.approx(10.95)


def test_a_missing_funding_period_is_neither_filled_nor_stretched(warehouse: Warehouse) -> None:
    # 8 h settlements with Jan 20 16:00 missing from the file: 00, 08, -, 00, 08
    events = [(t(20, 0), 0.0001), (t(20, 8), 0.0001), (t(21, 0), 0.0003), (t(21, 8), 0.0001)]
    with warehouse.writer() as con:
        add_perpetual(con)
        add_hours(con, t(20), 24 + 9)
        add_funding(con, events)
        refresh_marts(con, [date(2024, 1, 1)])
        hole = carry(con, t(20, 16))
        assert hole["funding_rate"] is None and hole["funding_annualized_pct"] is None
        # the settlement after the hole is 16 h after the previous one; 16 h is no funding interval,
        # so the last observed one (8 h) applies: 0.0003 x 8760 / 8 x 100 = 32.85 %, not 16.425 %
        after = carry(con, t(21, 0))
        assert after["funding_interval_hours"] == 8 and derivation(con, t(21, 0)) == "previous"
        assert after["funding_annualized_pct"] == pytest.approx(32.85)
        assert con.execute(
            "select count(funding_rate) from marts.fct_carry where instrument_key = ?", [BTC]
        ).fetchone() == (4,)


def test_the_interval_is_derived_across_a_month_boundary(warehouse: Warehouse) -> None:
    # Jan 31 20:00 and Feb 1 00:00 on 4 h funding: February's first settlement looks back into January
    with warehouse.writer() as con:
        add_perpetual(con)
        add_hours(con, t(31, 20), 8)
        add_funding(con, [(t(31, 16), 0.0001), (t(31, 20), 0.0001), (t(1, 0, month=2), 0.0001)])
        refresh_marts(con, [date(2024, 1, 1), date(2024, 2, 1)])
        feb = carry(con, t(1, 0, month=2))
        assert feb["funding_interval_hours"] == 4 and derivation(con, t(1, 0, month=2)) == "observed"


def test_oi_usd_of_a_linear_and_an_inverse_contract(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        # linear (Aperiodic, open interest in BTC): 1,234.5 BTC x mark 42,000 = 51,849,000 USD
        add_perpetual(con)
        add_hours(con, t(3), 1, mark=42_000.0)
        con.execute(
            "insert into raw.aperiodic_open_interest values "
            "('binance-futures', ?, 'exchange', '1h', '2024-01-01', ?, 1234.5, now())",
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


# -- through the wire: the emulator's store holds hand-made files for a venue it has no data for


def write_file(root: Path, metric: str, symbol: str, table: pa.Table, month: str = "2024-01") -> None:
    base = root if metric == "derivative_price" else root / metric
    folder = base / "hyperliquid-perps" / "1h" / "exchange" / symbol
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


def load_all(emu: Emulator, warehouse: Warehouse, metrics: tuple[str, ...]) -> None:
    client = AperiodicClient(emu.base_url("aperiodic"), emu.api_key, retry=FAST_RETRY)
    series = [Series("hyperliquid-perps", HYPE_BTC, "1h", "exchange")]
    for metric in metrics:
        load_months(client, warehouse, series, [date(2024, 1, 1)], progress=lambda _: None, metric=metric)


def test_hyperliquid_hourly_funding_and_open_interest_end_to_end(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    store = tmp_path / "store"
    write_file(store, "derivative_price", HYPE_BTC, price_file(6, 42_000.0))
    # columns in another order than documented: mapped by name
    write_file(
        store,
        "funding",
        HYPE_BTC,
        pa.table({"funding_rate": pa.array([0.0000125] * 6), "time": hours(6)}),
    )
    write_file(store, "open_interest", HYPE_BTC, pa.table({"time": hours(6), "open_interest": [1000.0] * 6}))
    with Emulator(aperiodic_files=store) as emu:
        load_all(emu, warehouse, ("derivative_price", "funding", "open_interest"))
    with warehouse.writer() as con:
        add_perpetual(con, "hyperliquid-perps", HYPE_BTC, funding_hours=1)
        refresh_marts(con, [date(2024, 1, 1)])
        row = carry(con, datetime(2024, 1, 1, 2, tzinfo=UTC), HYPE_BTC)
        assert row["funding_interval_hours"] == 1
        # Hyperliquid settles hourly: 0.00125 % x 8760 x 100 = 10.95 %
        assert row["funding_annualized_pct"] == pytest.approx(10.95)
        # 1,000 BTC x mark 42,000 = 42,000,000 USD
        assert row["oi_usd"] == pytest.approx(42_000_000.0)
        assert con.execute("select count(*) from raw.aperiodic_funding").fetchone() == (6,)
        # funding is not a price series: the coverage log holds the price load only
        assert con.execute("select count(*) from raw.load_log").fetchone() == (1,)


@pytest.mark.parametrize(
    ("metric", "column", "bad"),
    [("funding", "funding_rate", float("nan")), ("open_interest", "open_interest", float("inf"))],
)
def test_a_non_finite_value_is_rejected_naming_file_column_and_time(
    tmp_path: Path, warehouse: Warehouse, metric: str, column: str, bad: float
) -> None:
    store = tmp_path / "store"
    values = [0.0001, 0.0001, bad, 0.0001, bad, 0.0001]
    write_file(store, metric, HYPE_BTC, pa.table({"time": hours(6), column: pa.array(values)}))
    with Emulator(aperiodic_files=store) as emu, pytest.raises(FileValidationError) as err:
        load_all(emu, warehouse, (metric,))
    message = str(err.value)
    assert f"aperiodic {metric} hyperliquid-perps {HYPE_BTC} 1h exchange 2024-01" in message
    assert column in message and "2024-01-01 02:00:00" in message  # the first bad row, hour 2
    with warehouse.writer() as con:
        assert con.execute(f"select count(*) from raw.aperiodic_{metric}").fetchone() == (0,)


def test_a_funding_file_with_other_columns_fails_naming_them(tmp_path: Path, warehouse: Warehouse) -> None:
    store = tmp_path / "store"
    write_file(
        store,
        "funding",
        HYPE_BTC,
        pa.table({"time": hours(2), "rate": [0.0001, 0.0001], "funding_interval_hours": [1.0, 1.0]}),
    )
    with Emulator(aperiodic_files=store) as emu, pytest.raises(FileValidationError) as err:
        load_all(emu, warehouse, ("funding",))
    message = str(err.value)
    assert "aperiodic funding hyperliquid-perps" in message
    assert "unexpected columns ['funding_interval_hours', 'rate']" in message
    assert "missing ['funding_rate']" in message


# -- the emulator's real Binance funding


def test_real_binance_funding_arrives_untouched_with_its_8h_interval(aperiodic, warehouse: Warehouse) -> None:  # type: ignore[no-untyped-def]
    series = [Series("binance-futures", BTC, "1h", "exchange")]
    for metric in ("derivative_price", "funding", "open_interest"):
        load_months(aperiodic, warehouse, series, [date(2024, 3, 1)], progress=lambda _: None, metric=metric)
    with warehouse.writer() as con:
        loaded = con.execute("select ts, funding_rate from raw.aperiodic_funding order by ts").fetchall()
        # the shipped sample, read independently: 31 days x 3 settlements
        real = con.execute(
            f"select calc_time, last_funding_rate from read_parquet('{SAMPLE}') where symbol = 'BTCUSDT' "
            "and calc_time >= '2024-03-01 00:00:00+00' and calc_time < '2024-04-01 00:00:00+00' order by 1"
        ).fetchall()
        assert len(loaded) == 93 and loaded == real
        add_perpetual(con)
        refresh_marts(con, [date(2024, 3, 1)])
        hours_seen = con.execute(
            "select distinct funding_interval_hours from marts.fct_carry where funding_rate is not null"
        ).fetchall()
        assert hours_seen == [(8.0,)]
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


def test_a_drifted_funding_file_fails_naming_the_new_column(
    aperiodic, emulator, warehouse: Warehouse
) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.inject("drift_columns", target="file", match="/funding/", times=-1)
    series = [Series("binance-futures", BTC, "1h", "exchange")]
    with pytest.raises(FileValidationError) as err:
        load_months(
            aperiodic, warehouse, series, [date(2024, 3, 1)], progress=lambda _: None, metric="funding"
        )
    assert f"aperiodic funding binance-futures {BTC} 1h exchange 2024-03" in str(err.value)
    assert "unexpected columns ['funding_interval_hours'], missing none" in str(err.value)
    with warehouse.writer() as con:
        assert con.execute("select count(*) from raw.aperiodic_funding").fetchone() == (0,)


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
    # the fault spoils the file's first row: March 1 00:00, the first settlement of the month
    assert "funding_rate is -inf at time 2024-03-01 00:00:00" in str(err.value)
    with warehouse.writer() as con:
        assert con.execute("select count(*) from raw.aperiodic_funding").fetchone() == (0,)
