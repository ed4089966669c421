"""`markhouse report` on hand-built marts: each chart's plotted values are the values worked out by
hand from the rows put in, the PNGs are real pictures, and the page renders in a real browser."""

from __future__ import annotations

import base64
import io
import os
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.dates import date2num
from PIL import Image

from pipelines.cli import main
from pipelines.marts import MARTS, report_metadata
from pipelines.models import build_views, refresh_marts
from pipelines.report import Report, ReportInputError, build_charts, write_report
from pipelines.report.charts import FONT, Chart, carry_chart, mark_last_gap_chart, term_structure_chart
from pipelines.report.data import Columns, read_report_data
from pipelines.status import build_report
from pipelines.warehouse.lake import Warehouse
from pipelines.warehouse.serving import open_serving, publish_serving
from tests.test_cayolargo_models import JUN, MAR, PERP, add_instruments, at, insert

CHARTS = (
    "term_structure",
    "carry",
    "constant_maturity",
    "carry_trade",
    "mark_last_gap",
    "vendor_divergence",
    "vol_smile",
    "vol_term_structure",
    "coverage",
)


# Three snapshot days. Basis: mark vs index 50,000. Funding per 8 h. Last only where a gap is meant.
SNAPSHOTS: list[dict[str, Any]] = [
    {"ts": at(10, 12), "mark_price": 50_000.0, "funding_rate": -0.0001},
    {"instrument_key": MAR, "ts": at(10, 12), "mark_price": 50_000.0},
    {"instrument_key": JUN, "ts": at(10, 12), "mark_price": 50_000.0},
    # mark 50,000 vs last 49,900: a 20 bps gap
    {"ts": at(13, 12), "mark_price": 50_000.0, "last_price": 49_900.0, "funding_rate": 0.0004},
    {"instrument_key": MAR, "ts": at(13, 12), "mark_price": 50_050.0},  # 0.1 %
    {"instrument_key": JUN, "ts": at(13, 12), "mark_price": 50_500.0},  # 1 %
    {"ts": at(20, 12), "mark_price": 50_010.0, "last_price": 50_010.0, "funding_rate": 0.0001},
    {"instrument_key": MAR, "ts": at(20, 12), "mark_price": 50_100.0},  # 0.2 %
    {"instrument_key": JUN, "ts": at(20, 12), "mark_price": 51_000.0},  # 2 %
    # the perpetual alone ten minutes later: mark 50,010 vs last 50,060, -9.998 bps
    {"ts": at(20, 12, 10), "mark_price": 50_010.0, "last_price": 50_060.0, "funding_rate": 0.0003},
]


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once for the module: the tests only read it."""
    folder = tmp_path_factory.mktemp("report")
    path = folder / "serving.duckdb"
    with Warehouse(folder / "warehouse.sqlite").writer() as con:
        add_instruments(con)
        for key in (PERP, MAR, JUN):  # loaded on 2026-04-01: March is expected whole
            con.execute(
                "insert into raw.load_log values ('cayolargo', 'deribit', ?, 'exchange', '10m', '2026-03-01', "
                "1, 1, '2026-04-01 00:00:00+00', null)",
                [key],
            )
        insert(con, [{"index_price": 50_000.0, **row} for row in SNAPSHOTS])
        refresh_marts(con, [date(2026, 3, 1)])
        # a second vendor's hours of the perpetual, 1 and 2 bps off, for the divergence chart
        for ts, mark in ((at(13, 12), 50_005.0), (at(20, 12), 50_020.0)):
            con.execute(
                "insert into marts.fct_price_interval (vendor, venue, instrument_key, timestamp_type, interval, "
                "source_interval, ts, n_obs, mark_price, index_price, last_price) "
                "values ('kaiko', 'deribit', ?, 'exchange', '1h', '1h', ?, 1, ?, 50000.0, ?)",
                [PERP, ts, mark, mark],
            )
        refresh_marts(con, [date(2026, 3, 1)], only={"rpt_vendor_divergence"})
        publish_serving(con, path)
    return path


def by_gid(chart: Chart, gid: str) -> Any:
    found = [a for ax in chart.figure.axes for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) == 1, f"{chart.name}: {len(found)} artists with gid {gid!r}"
    return found[0]


def gids(chart: Chart, prefix: str) -> set[str]:
    return {
        a.get_gid()
        for ax in chart.figure.axes
        for a in ax.get_children()
        if (a.get_gid() or "").startswith(prefix)
    }


def charts(report: Report) -> dict[str, Chart]:
    return {c.name: c for c in report.charts}


def march_charts(serving: Path, **options: Any) -> dict[str, Chart]:
    """The charts without writing them (rendering PNGs is what costs)."""
    options = {"start": date(2026, 3, 9), "end": date(2026, 3, 28), **options}
    return {c.name: c for c in build_charts(read_report_data(serving, **options))}


def march_report(serving: Path, tmp_path: Path, **options: Any) -> Report:
    return write_report(
        serving, tmp_path / "out" / "report.html", start=date(2026, 3, 9), end=date(2026, 3, 28), **options
    )


def test_term_structure_draws_the_latest_snapshot_and_seven_days_earlier(
    serving: Path, tmp_path: Path
) -> None:
    chart = march_charts(serving)["term_structure"]
    curve = "curve|cayolargo|deribit|BTC|USD|BTC|"
    latest = by_gid(chart, curve + at(20, 12).isoformat())
    earlier = by_gid(chart, curve + at(13, 12).isoformat())  # the 7-day lag lands exactly on it
    # no snapshot at or before 30 or 90 days earlier; the 10th is none of the lags
    assert gids(chart, "curve|") == {latest.get_gid(), earlier.get_gid()}
    # days to expiry: 2026-03-20 12:00 -> 03-27 08:00 = 6 d 20 h; -> 06-26 08:00 = 97 d 20 h
    dte_mar, dte_jun = 6 + 20 / 24, 97 + 20 / 24
    assert list(latest.get_xdata()) == pytest.approx([dte_mar, dte_jun])
    assert list(latest.get_ydata()) == pytest.approx(
        [0.2 * 365 / dte_mar, 2.0 * 365 / dte_jun]
    )  # 10.68, 7.46
    assert list(earlier.get_xdata()) == pytest.approx([dte_mar + 7, dte_jun + 7])
    assert list(earlier.get_ydata()) == pytest.approx([0.1 * 365 / (dte_mar + 7), 1.0 * 365 / (dte_jun + 7)])
    # the perpetual's point at 0: funding 0.0001 per 8 h = 0.0001 x 3 x 365 x 100 = 10.95 %
    perp = by_gid(chart, "perp|cayolargo|deribit|BTC|USD|BTC|" + at(20, 12).isoformat())
    assert perp.get_offsets().tolist() == [[0.0, pytest.approx(10.95)]]


def test_constant_maturity_and_carry_trade_charts_by_hand(serving: Path) -> None:
    drawn = march_charts(serving)
    # 2026-03-20 12:00: March 6 d 20 h out at 0.2 %, June 97 d 20 h at 2 % (the only futures that day)
    dte_mar, dte_jun = 6 + 20 / 24, 97 + 20 / 24
    mar, jun = 0.2 * 365 / dte_mar, 2.0 * 365 / dte_jun  # 10.68, 7.46 % a year
    thirty = by_gid(drawn["constant_maturity"], "cayolargo|deribit|BTC|BTC|30")
    day = list(thirty.get_xdata()).index(at(20))
    assert thirty.get_ydata()[day] == pytest.approx(mar + (jun - mar) * (30 - dte_mar) / (dte_jun - dte_mar))
    # 7 days is bracketed only on the 20th (March 6.8 days out; 13.8 and 16.8 on the 13th and 10th)
    seven = by_gid(drawn["constant_maturity"], "cayolargo|deribit|BTC|BTC|7")
    assert list(seven.get_xdata()) == [at(20)]
    assert list(seven.get_ydata()) == pytest.approx([mar + (jun - mar) * (7 - dte_mar) / (dte_jun - dte_mar)])
    assert gids(drawn["constant_maturity"], "cayolargo|deribit|BTC|BTC|180") == set()  # beyond June: none
    # a panel per curve, its tenors told apart by colour and named in its legend
    assert [ax.get_title() for ax in drawn["constant_maturity"].figure.axes] == [
        "BTC · deribit (cayolargo, BTC-settled)"
    ]
    assert legend_texts(drawn["constant_maturity"]) == [["7 days", "30 days", "60 days", "90 days"]]
    # cash and carry on March: its annualized basis; the perpetual's last funding that hour is
    # 0.0003 per 8 h (12:10), 32.85 % a year, so long perpetual / short June pays 7.46 - 32.85
    pair = "cash_and_carry: long index · deribit (cayolargo), short future-BTC-USD:BTC-20260327 · deribit (cayolargo)"
    carry = by_gid(drawn["carry_trade"], f"BTC|{pair}")
    assert carry.get_ydata()[list(carry.get_xdata()).index(at(20))] == pytest.approx(mar)
    with open_serving(serving) as con:
        row = con.execute(
            "select annualized_return_pct, rank_in_hour from marts.rpt_carry_trade "
            "where ts = ? and trade = 'perp_vs_future' and short_instrument_key = ?",
            [at(20, 12), JUN],
        ).fetchone()
    assert row is not None and row[0] == pytest.approx(jun - 0.0003 * 3 * 365 * 100)
    assert row[1] == 4  # after both cash and carry trades and the perpetual against March


def test_carry_over_time_is_the_daily_mean_of_fct_carry(serving: Path) -> None:
    chart = march_charts(serving)["carry"]
    perp = by_gid(chart, f"cayolargo|deribit|{PERP}")
    assert list(perp.get_xdata()) == [at(10), at(13), at(20)]
    # funding x 3 x 365 x 100; the 20th is the mean of 0.0001 and 0.0003
    assert list(perp.get_ydata()) == pytest.approx([-10.95, 43.8, 21.9])
    mar = by_gid(chart, f"cayolargo|deribit|{MAR}")
    assert list(mar.get_xdata()) == [at(10), at(13), at(20)]
    assert list(mar.get_ydata()) == pytest.approx(
        [0.0, 0.1 * 365 / (13 + 20 / 24), 0.2 * 365 / (6 + 20 / 24)]
    )
    # a range of 14 days or less is averaged per hour: 12:00 and 12:10 share an hour
    short = march_charts(serving, start=at(20).date(), end=at(20).date())
    hourly = by_gid(short["carry"], f"cayolargo|deribit|{PERP}")
    assert list(hourly.get_xdata()) == [at(20, 12)] and list(hourly.get_ydata()) == pytest.approx([21.9])


def test_mark_last_gap_points_and_episodes(serving: Path) -> None:
    chart = march_charts(serving, interval="10m")["mark_last_gap"]
    dots = by_gid(chart, f"cayolargo|deribit|{PERP}|exchange")
    # (mark - last) / mark x 10,000: 100 / 50,000 = 20 bps; -50 / 50,010 = -9.998 bps (threshold 5)
    assert dots.get_offsets().tolist() == [
        [date2num(at(13, 12)), pytest.approx(20.0)],
        [date2num(at(20, 12, 10)), pytest.approx(-50 / 50_010 * 10_000)],
    ]
    bars = by_gid(chart, f"episodes|cayolargo|deribit|{PERP}|exchange")
    ten_minutes = 10 / 1440
    xs = [path.vertices[:, 0] for path in bars.get_paths()]
    spans = sorted((float(x.min()), float(x.max() - x.min())) for x in xs)
    assert spans == [
        (pytest.approx(date2num(at(13, 12))), pytest.approx(ten_minutes)),
        (pytest.approx(date2num(at(20, 12, 10))), pytest.approx(ten_minutes)),
    ]
    # the futures carry no last price: no gap, no series
    assert gids(chart, "cayolargo|") == {dots.get_gid()}


def test_coverage_heat_map_counts_missing_intervals_per_day(serving: Path) -> None:
    chart = march_charts(serving)["coverage"]
    image = by_gid(chart, "coverage")
    labels = [t.get_text() for t in image.axes.get_yticklabels()]
    assert labels == [f"{k} · deribit (cayolargo, 10m)" for k in (MAR, JUN, PERP)]
    cells = np.ma.filled(image.get_array().astype(float), np.nan)
    nan = float("nan")
    days = [date(2026, 3, 9) + timedelta(days=i) for i in range(20)]  # 03-09 .. 03-28
    loaded = {date(2026, 3, 10): 1, date(2026, 3, 13): 1, date(2026, 3, 20): 1}
    # the perpetual: 144 ten-minute intervals a day from the month start; the 20th has two snapshots
    perp = [144 - loaded.get(d, 0) - (d == date(2026, 3, 20)) for d in days]
    # a future is expected from its first snapshot (03-10 12:00: 72 intervals) to its expiry
    # (the March one: 03-27 08:00, 48 intervals that day, nothing after)
    mar = [nan] + [72 - 1] + [144 - loaded.get(d, 0) for d in days[2:18]] + [48, nan]
    jun = [nan] + [72 - 1] + [144 - loaded.get(d, 0) for d in days[2:]]
    np.testing.assert_array_equal(cells, np.array([mar, jun, perp]))
    # a whole month's days add up to marts.rpt_coverage's missing_intervals
    month = march_charts(serving, start=date(2026, 3, 1), end=date(2026, 3, 31))["coverage"]
    whole = np.nansum(np.ma.filled(by_gid(month, "coverage").get_array().astype(float), np.nan), axis=1)
    with open_serving(serving) as con:
        mart = dict(
            con.execute(
                "select instrument_key, missing_intervals from marts.rpt_coverage where interval = '10m'"
            ).fetchall()
        )
    assert whole.tolist() == [mart[MAR], mart[JUN], mart[PERP]]
    assert mart[PERP] == 31 * 144 - 4  # by hand: 4 snapshots in a 31-day month


def columns(rows: list[dict[str, Any]]) -> Columns:
    """Rows as a query's columns: what a chart is given."""
    return {name: [row[name] for row in rows] for name in rows[0]}


def legend_texts(chart: Chart) -> list[list[str]]:
    """Each legend's entries, the figure's after the axes' ones, each asserted readable at 100 %."""
    legends = [ax.get_legend() for ax in chart.figure.axes if ax.get_legend()] + list(chart.figure.legends)
    assert all(t.get_fontsize() >= FONT == 9 for legend in legends for t in legend.get_texts()), chart.name
    return [[t.get_text() for t in legend.get_texts()] for legend in legends]


def test_coverage_counts_the_running_day_up_to_the_clock(serving: Path) -> None:
    """The issue's demo showed ~960 Kaiko minutes of the running day missing though they had not
    ended yet; from a known clock the running day expects only the intervals ended by then."""
    clock = at(20, 12, 5)  # ten-minute intervals ended by 12:05: 00:00 .. 11:50, 72 of them
    data = read_report_data(serving, start=date(2026, 3, 1), end=date(2026, 3, 21), as_of=clock)
    cov = data.columns["coverage"]
    days = {
        (cov["instrument_key"][i], cov["day"][i].date()): (
            cov["expected_rows"][i],
            cov["loaded_rows"][i],
            cov["missing_intervals"][i],
        )
        for i in range(len(cov["day"]))
    }
    # the perpetual's rows of the 20th (12:00 and 12:10) had not ended at 12:05: none counts yet
    assert days[(PERP, date(2026, 3, 20))] == (72, 0, 72)
    assert days[(JUN, date(2026, 3, 20))] == (72, 0, 72)
    assert days[(PERP, date(2026, 3, 21))] == (0, 0, 0)  # after the clock: nothing expected
    assert days[(PERP, date(2026, 3, 13))] == (144, 1, 143)  # a whole day before it
    # the month's days add up to what `markhouse status` counts at that clock: 19 days x 144 + 72
    # intervals, two of them loaded (the 10th and the 13th at 12:00)
    status = {m.instrument_key: m for m in build_report(serving, as_of=clock, max_age_hours=36).months}
    perp = [missing for (key, _), (_, _, missing) in days.items() if key == PERP]
    assert sum(perp) == status[PERP].missing_intervals == 19 * 144 + 72 - 2
    # the chart: the running day's cell is those 72, the day after is grey (nothing expected)
    cells = by_gid(build_charts(data)[-1], "coverage").get_array()
    assert cells[2, -2] == 72 and cells.mask[2, -1]


def test_every_legend_is_readable_and_every_multi_series_axes_has_one(serving: Path) -> None:
    for chart in march_charts(serving, interval="10m").values():
        legend_texts(chart)  # 9 pt at least
        for ax in chart.figure.axes:
            drawn = {a.get_gid() for a in ax.get_children() if a.get_gid()}
            if len(drawn) > 1:
                keyed = ax.get_legend() or chart.figure.legends or chart.figure.axes[0].get_legend()
                assert keyed, f"{chart.name}: {len(drawn)} series and no legend"
        for ax in chart.figure.axes:  # series named on an axis (coverage, episodes) as readable
            assert all(t.get_fontsize() >= FONT for t in ax.get_yticklabels()), chart.name


def test_carry_is_a_funding_and_a_basis_panel_per_coin() -> None:
    """Ten lines on one basis panel hid the Kaiko series: each coin gets its own two panels."""
    series = [  # (coin, kind, vendor, venue, instrument)
        ("BTC", "perpetual", "aperiodic", "binance-futures", "perpetual-BTC-USDT:USDT"),
        ("BTC", "future", "cayolargo", "deribit", MAR),
        ("BTC", "future", "kaiko", "binance-futures", "future-BTC-USDT:USDT-20260327"),
        ("BTC", "future", "kaiko", "binance-futures", "future-BTC-USDT:USDT-20260626"),
        ("ETH", "perpetual", "cayolargo", "deribit", "perpetual-ETH-USD:ETH"),
        ("ETH", "future", "cayolargo", "deribit", "future-ETH-USD:ETH-20260327"),
    ]
    rows = [
        {
            "coin": c,
            "vendor": v,
            "venue": ve,
            "instrument_key": k,
            "kind": kind,
            "bucket": at(d),
            "carry_pct": 1.0,
        }
        for c, kind, v, ve, k in series
        for d in (10, 11)
    ]
    chart = carry_chart(columns(rows), "day")
    axes = chart.figure.axes
    assert [ax.get_title() for ax in axes] == [
        "BTC: perpetuals' funding (mean per day)",
        "BTC: dated futures' basis (mean per day)",
        "ETH: perpetuals' funding (mean per day)",
        "ETH: dated futures' basis (mean per day)",
    ]
    drawn = [[line.get_gid() for line in ax.get_lines() if line.get_gid()] for ax in axes]
    assert drawn == [
        ["aperiodic|binance-futures|perpetual-BTC-USDT:USDT"],
        [
            f"cayolargo|deribit|{MAR}",
            *(f"kaiko|binance-futures|future-BTC-USDT:USDT-20260{m}" for m in ("327", "626")),
        ],
        ["cayolargo|deribit|perpetual-ETH-USD:ETH"],
        ["cayolargo|deribit|future-ETH-USD:ETH-20260327"],
    ]
    # each panel's own legend names its lines; the two Kaiko expiries (which coincide in the demo)
    # differ in dash as well as colour
    assert legend_texts(chart)[1] == [
        f"{MAR} · deribit (cayolargo)",
        "future-BTC-USDT:USDT-20260327 · binance-futures (kaiko)",
        "future-BTC-USDT:USDT-20260626 · binance-futures (kaiko)",
    ]
    kaiko = [line for line in axes[1].get_lines() if "kaiko" in (line.get_gid() or "")]
    assert kaiko[0].get_color() != kaiko[1].get_color()
    assert kaiko[0].get_linestyle() != kaiko[1].get_linestyle()


def test_mark_last_gap_series_have_a_key() -> None:
    """Fifteen coloured series had no legend: the figure's legend names each as its episodes' row."""
    keys = [
        ("cayolargo", "deribit", PERP),
        ("kaiko", "binance-futures", "perpetual-BTC-USDT:USDT"),
        ("cayolargo", "deribit", MAR),
    ]
    rows = [
        {
            "vendor": v,
            "venue": ve,
            "instrument_key": k,
            "timestamp_type": "exchange",
            "ts": at(10, h),
            "gap_bps": 6.0,
            "threshold_bps": 5.0,
            "episode_start": at(10, h),
            "episode_end": at(10, h),
            "episode_intervals": 1,
        }
        for h, (v, ve, k) in enumerate(keys)
    ]
    chart = mark_last_gap_chart(columns(rows), 5.0, "1h", 3600)
    names = [f"{k} · {ve} ({v}, exchange)" for v, ve, k in keys]
    assert legend_texts(chart) == [names]
    assert [t.get_text() for t in chart.figure.axes[1].get_yticklabels()] == names
    legend = chart.figure.legends[0]
    dots = {c.get_gid(): c for c in chart.figure.axes[0].collections}
    for (v, ve, k), handle in zip(keys, legend.legend_handles, strict=True):
        assert handle is not None
        assert tuple(handle.get_facecolor()[0]) == tuple(dots[f"{v}|{ve}|{k}|exchange"].get_facecolor()[0])


def test_term_structure_legend_keys_curves_snapshots_and_funding(serving: Path) -> None:
    """The legend was 6.5 pt, one entry per curve and snapshot, with no entry for the hollow funding
    marker, and said nothing where a vendor (Kaiko) sends no funding."""
    chart = march_charts(serving)["term_structure"]
    assert legend_texts(chart) == [
        [
            "deribit (cayolargo, USD/BTC)\nlatest 2026-03-20 12:00",
            "latest",
            "7 days earlier",
            "hollow, at 0: the perpetual's annualized funding",
        ]
    ]
    point = {"coin": "BTC", "quote": "USDT", "settle": "USDT", "ts": at(20, 12), "days_before": 0}
    rows = [
        {
            **point,
            "vendor": "kaiko",
            "venue": "binance-futures",
            "kind": "perpetual",
            "tenor_rank": 0,
            "instrument_key": "perpetual-BTC-USDT:USDT",
            "dte_days": None,
            "annualized_basis_pct": None,
            "funding_annualized_pct": None,
        },
        {
            **point,
            "vendor": "kaiko",
            "venue": "binance-futures",
            "kind": "future",
            "tenor_rank": 1,
            "instrument_key": "future-BTC-USDT:USDT-20260626",
            "dte_days": 97.8,
            "annualized_basis_pct": 3.0,
            "funding_annualized_pct": None,
        },
    ]
    kaiko = term_structure_chart(columns(rows))
    assert legend_texts(kaiko) == [
        ["binance-futures (kaiko, USDT/USDT)\nlatest 2026-03-20 12:00, no funding from kaiko", "latest"]
    ]
    assert gids(kaiko, "perp|") == set()


def test_vendor_divergence_lines_are_the_marts_differences(warehouse: Warehouse, tmp_path: Path) -> None:
    btc = "perpetual-BTC-USDT:USDT"
    serving = tmp_path / "serving.duckdb"
    with warehouse.writer() as con:
        build_views(con)
        prices = [  # (vendor, hour, mark, index, last)
            ("aperiodic", 0, 100.0, 99.0, 100.0),
            ("kaiko", 0, 99.5, 99.0, 100.0),
            ("aperiodic", 1, 101.0, 100.0, 101.0),
            ("kaiko", 1, 101.0, 100.5, 100.0),
            ("aperiodic", 2, 102.0, 101.0, 102.0),  # kaiko has no 02:00: no pair
        ]
        for vendor, hour, mark, index, last in prices:
            con.execute(
                "insert into marts.fct_price_interval (vendor, venue, instrument_key, timestamp_type, interval, "
                "source_interval, ts, n_obs, mark_price, index_price, last_price) "
                "values (?, 'binance-futures', ?, 'exchange', '1h', '1h', ?, 1, ?, ?, ?)",
                [vendor, btc, at(5, hour), mark, index, last],
            )
        refresh_marts(con, [date(2026, 3, 1)], only={"rpt_vendor_divergence"})
        publish_serving(con, serving)
    report = write_report(serving, tmp_path / "out" / "r.html", start=date(2026, 3, 5), end=date(2026, 3, 5))
    chart = charts(report)["vendor_divergence"]
    expected = {  # (aperiodic - kaiko) / kaiko x 10,000
        "mark": [(100 - 99.5) / 99.5 * 1e4, 0.0],
        "index": [0.0, (100 - 100.5) / 100.5 * 1e4],
        "last": [0.0, (101 - 100) / 100 * 1e4],
    }
    for price, values in expected.items():
        line = by_gid(chart, f"{price}|aperiodic|kaiko|binance-futures|{btc}")
        assert list(line.get_xdata()) == [at(5, 0), at(5, 1)]
        assert list(line.get_ydata()) == pytest.approx(values)
    # the other charts have nothing to draw here, and say so instead of failing
    assert all(png.stat().st_size > 0 for png in report.png_paths.values())


def assert_a_real_picture(png: bytes, min_width: int, min_height: int) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.width >= min_width and image.height >= min_height, image.size
    pixels = np.asarray(image).reshape(-1, 3)
    drawn = (pixels < 235).any(axis=1).mean()  # not white-ish
    colours = len(np.unique(pixels, axis=0))
    assert drawn > 0.02 and colours > 50, f"looks blank: {drawn:.1%} drawn, {colours} colours"


def test_pngs_are_pictures_and_the_page_embeds_them(serving: Path, tmp_path: Path) -> None:
    report = march_report(serving, tmp_path)
    assert set(report.png_paths) == set(CHARTS)
    page = report.html_path.read_text()
    for name, path in report.png_paths.items():
        assert path.parent == report.html_path.parent and path.name == f"{name}.png"
        png = path.read_bytes()
        assert_a_real_picture(png, min_width=700, min_height=250)
        assert f'id="chart-{name}"' in page and base64.b64encode(png).decode() in page
    assert "http://" not in page and "https://" not in page and "<script" not in page  # opens offline


def test_dagster_metadata_carries_each_chart_and_the_report(serving: Path, tmp_path: Path) -> None:
    report = march_report(serving, tmp_path)
    metadata = report_metadata(report)
    assert metadata["report"].value == str(report.html_path.resolve())
    charted = {name.removeprefix("chart_") for name in metadata if name.startswith("chart_")}
    assert charted == set(CHARTS)
    marts = {chart.mart for chart in report.charts}
    assert marts == {
        "rpt_term_structure",
        "fct_carry",
        "fct_carry_constant_maturity",
        "rpt_carry_trade",
        "rpt_mark_last_gap",
        "rpt_vendor_divergence",
        "rpt_coverage",
        "rpt_vol_smile",
        "rpt_vol_term_structure",
    } and marts <= set(MARTS)
    for name in charted:
        text = metadata[f"chart_{name}"].value
        png = base64.b64decode(text.split("data:image/png;base64,", 1)[1].rstrip(")"))
        assert_a_real_picture(png, min_width=300, min_height=100)


def test_cli_report_options_and_errors(
    serving: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("MARKHOUSE_SERVING", str(serving))
    out = tmp_path / "cli" / "mine.html"
    code = main(
        ["report", "--start", "2026-03-09", "--end", "2026-03-28", "--instrument", PERP, "--output", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"report (2026-03-09 .. 2026-03-28): {out}" in printed
    assert out.exists() and (out.parent / "coverage.png").exists()
    with pytest.raises(ReportInputError, match=r"not in marts\.dim_instrument: perpetual-DOGE-USDT:USDT"):
        write_report(serving, tmp_path / "x.html", instruments=[PERP, "perpetual-DOGE-USDT:USDT"])
    assert (
        main(["report", "--instrument", "perpetual-DOGE-USDT:USDT", "--output", str(tmp_path / "y.html")])
        == 2
    )
    assert "perpetual-DOGE-USDT:USDT" in capsys.readouterr().err
    assert (
        main(["report", "--start", "2026-03-20", "--end", "2026-03-10", "--output", str(tmp_path / "z.html")])
        == 2
    )
    assert not (tmp_path / "y.html").exists() and not (tmp_path / "z.html").exists()


def test_the_instrument_option_keeps_only_those_instruments(serving: Path) -> None:
    only = march_charts(serving, instruments=[MAR])
    coverage = by_gid(only["coverage"], "coverage")
    assert [t.get_text() for t in coverage.axes.get_yticklabels()] == [f"{MAR} · deribit (cayolargo, 10m)"]
    assert gids(only["carry"], "cayolargo|") == {f"cayolargo|deribit|{MAR}"}
    assert gids(only["term_structure"], "perp|") == set()  # the perpetual is not asked for
    assert gids(only["vendor_divergence"], "mark|") == set()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_the_page_renders_every_chart_in_a_real_browser(serving: Path, tmp_path: Path) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs Debian's chromium (.ci/run) but no chromium is on PATH")
        pytest.skip("no Chromium on this machine: `apt-get install -y chromium` (Debian) to run this test")
    from playwright.sync_api import sync_playwright

    report = march_report(serving, tmp_path)
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.html_path.resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img.chart",
                "imgs => imgs.map(i => ({id: i.id, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,"
                " shown: i.getBoundingClientRect().width}))",
            )
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert [i["id"] for i in images] == [f"chart-{name}" for name in CHARTS]
    for image in images:
        assert image["complete"] and image["w"] > 700 and image["h"] > 250 and image["shown"] > 500, image
    assert problems == []
    assert all(url.startswith(("file://", "data:")) for url in requests), requests  # nothing from the network
    assert_a_real_picture(shot.read_bytes(), min_width=1280, min_height=2000)


def test_a_report_that_cannot_be_drawn_warns_and_leaves_the_run_green(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.report
    from pipelines.marts import draw_report

    def broken(path: Path) -> None:
        raise OSError(f"disk full writing {path}")

    monkeypatch.setattr(pipelines.report, "write_report", broken)
    warnings: list[str] = []
    assert draw_report(tmp_path / "serving.duckdb", warnings.append) is None
    assert len(warnings) == 1 and warnings[0].startswith("report not written: OSError: disk full writing")
