"""`markhouse status` exit codes and output, and the cross-vendor report views on hand-built rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.models import build_views, refresh_marts
from pipelines.sources.aperiodic.load import Series, load_months
from pipelines.warehouse.lake import Warehouse
from pipelines.warehouse.serving import publish_serving
from tests.conftest import BTC_1H, insert_rows

BTC, ETH = "perpetual-BTC-USDT:USDT", "perpetual-ETH-USDT:USDT"
BOTH = [Series("binance-futures", s, "1h", "exchange") for s in (BTC, ETH)]


@pytest.fixture
def serving(aperiodic, warehouse, tmp_path, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "serving.duckdb"
    monkeypatch.setenv("MARKHOUSE_SERVING", str(path))
    monkeypatch.setenv("MARKHOUSE_WAREHOUSE", str(warehouse.path))
    return path


def publish(aperiodic, warehouse: Warehouse, serving: Path, months: list[date]) -> None:  # type: ignore[no-untyped-def]
    load_months(aperiodic, warehouse, BOTH, months, progress=lambda _: None)
    with warehouse.writer() as con:
        refresh_marts(con, months)
        publish_serving(con, serving)


def publish_february_and_april_with_an_eth_gap(aperiodic, warehouse: Warehouse, serving: Path) -> None:  # type: ignore[no-untyped-def]
    """March is missing for both instruments; three hours of April (10th, 01:00-03:00) for ETH."""
    publish(aperiodic, warehouse, serving, [date(2026, 2, 1), date(2026, 4, 1)])
    with warehouse.writer() as con:  # three hours of April go missing for ETH
        con.execute(
            "delete from raw.aperiodic_derivative_price where instrument_key = ? and ts in (?, ?, ?)",
            [ETH, *(datetime(2026, 4, 10, h, tzinfo=UTC) for h in (1, 2, 3))],
        )
        refresh_marts(con, [date(2026, 4, 1)])
        publish_serving(con, serving)


def status(capsys, *args: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code = main(["status", *args])
    return code, capsys.readouterr().out


def test_status_fresh(aperiodic, warehouse, serving, capsys) -> None:  # type: ignore[no-untyped-def]
    publish(aperiodic, warehouse, serving, [date(2026, 3, 1), date(2026, 4, 1)])
    code, out = status(capsys, "--as-of", "2026-05-01T10:00")  # last hour 04-30 23:00 is 11 h old
    assert code == 0, out
    assert "aperiodic  binance-futures  perpetual-BTC-USDT:USDT        1h   2026-04       720        0" in out
    assert "status: OK" in out


def test_status_stale(aperiodic, warehouse, serving, capsys) -> None:  # type: ignore[no-untyped-def]
    publish(aperiodic, warehouse, serving, [date(2026, 3, 1), date(2026, 4, 1)])
    code, out = status(capsys, "--as-of", "2026-05-03T00:00", "--max-age-hours", "24")  # 49 h = 2.04 d
    assert code == 1
    assert (
        f"aperiodic binance-futures {BTC}: stale, last interval 2026-04-30 23:00 is 2.0d old (bound 24h)"
        in out
    )
    code, _ = status(capsys, "--as-of", "2026-05-03T00:00", "--max-age-hours", "50")
    assert code == 0


def test_status_missing_month_and_intervals(aperiodic, warehouse, serving, capsys) -> None:  # type: ignore[no-untyped-def]
    publish_february_and_april_with_an_eth_gap(aperiodic, warehouse, serving)
    code, out = status(capsys, "--as-of", "2026-05-01T10:00")
    assert code == 1
    assert f"aperiodic binance-futures {BTC}: missing months 2026-03" in out
    assert f"aperiodic binance-futures {ETH} 2026-04: 3 missing 1h intervals (tolerance 0)" in out
    code, out = status(capsys, "--as-of", "2026-05-01T10:00", "--missing-tolerance", "3")
    assert code == 1 and "missing 1h intervals" not in out and "missing months 2026-03" in out


def test_status_problems_carry_their_kind(aperiodic, warehouse, serving) -> None:  # type: ignore[no-untyped-def]
    """The asset checks split freshness from completeness by a problem's kind, not its wording."""
    from pipelines.status import ProblemKind, build_report

    publish_february_and_april_with_an_eth_gap(aperiodic, warehouse, serving)
    report = build_report(serving, as_of=datetime(2026, 5, 3, tzinfo=UTC), max_age_hours=24)
    kinds = sorted((p.kind.value, p.text.split(" ")[2]) for p in report.problems)
    # both miss March; ETH misses 3 April hours; both last at 04-30 23:00, 49 h > 24 h before
    assert kinds == [
        ("missing_intervals", ETH),
        ("missing_months", BTC + ":"),
        ("missing_months", ETH + ":"),
        ("stale", BTC + ":"),
        ("stale", ETH + ":"),
    ]
    assert all(isinstance(p.kind, ProblemKind) for p in report.problems)


def test_status_as_of_a_past_time_cuts_the_data_loaded_after_it(
    aperiodic, warehouse, serving, capsys
) -> None:  # type: ignore[no-untyped-def]
    publish(aperiodic, warehouse, serving, [date(2026, 3, 1), date(2026, 4, 1)])
    code, out = status(capsys, "--as-of", "2026-04-10T06:30", "--max-age-hours", "2")
    assert code == 0, out
    # April as of 06:30 on the 10th: 9 days and the 6 hours 00:00 .. 05:00 complete = 222 hours,
    # the last one 05:00, 1.5 h before; March whole
    assert (
        f"aperiodic  binance-futures  {BTC}        1h   2026-04       222        0  2026-04-10 05:00  1.5h"
        in out
    )
    assert (
        f"aperiodic  binance-futures  {BTC}        1h   2026-03       744        0  2026-03-31 23:00  9.3d"
        in out
    )
    assert "-" not in "".join(line.split()[-1] for line in out.splitlines() if line.startswith("aperiodic"))
    code, out = status(capsys, "--as-of", "2026-03-31T12:00")  # before April: no April row at all
    assert (
        "2026-04" not in out
        and f"{BTC}        1h   2026-03       732        0  2026-03-31 11:00  1.0h" in out
    )


def test_status_json_carries_the_same_judgement(aperiodic, warehouse, serving, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    publish(aperiodic, warehouse, serving, [date(2026, 3, 1), date(2026, 4, 1)])
    code, out = status(capsys, "--as-of", "2026-05-03T00:00", "--max-age-hours", "24", "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False and report["as_of"] == "2026-05-03T00:00:00+00:00"
    assert report["problems"] == [
        f"aperiodic binance-futures {key}: stale, last interval 2026-04-30 23:00 is 2.0d old (bound 24h)"
        for key in (BTC, ETH)
    ]
    april = [m for m in report["months"] if m["month"] == "2026-04" and m["instrument_key"] == BTC]
    # 30 days of hours, the last at 04-30 23:00, 49 h before the as-of time
    assert april == [
        {
            "vendor": "aperiodic",
            "venue": "binance-futures",
            "instrument_key": BTC,
            "interval": "1h",
            "month": "2026-04",
            "expected_rows": 720,
            "loaded_rows": 720,
            "missing_intervals": 0,
            "last_ts": "2026-04-30T23:00:00+00:00",
            "age_hours": 49.0,
        }
    ]


def test_status_without_a_serving_copy(serving, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["status"]) == 5  # the warehouse exit code: nothing to read yet


def insert_prices(con, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    insert_rows(
        con, "marts.fct_price_interval", rows, **BTC_1H, source_interval="1h", n_obs=1, index_price=100.0
    )


def t(hour: int) -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=hour)


def test_mark_last_gap_episodes(warehouse) -> None:  # type: ignore[no-untyped-def]
    with warehouse.writer() as con:
        build_views(con, {"mark_last_gap_threshold_bps": 50.0})
        insert_prices(
            con,
            [
                {"vendor": "aperiodic", "ts": t(h), "mark_price": 100.0, "last_price": last}
                for h, last in enumerate([100.0, 99.0, 99.2, 99.9, 101.0, 100.0])
            ],
        )
        rows = con.execute(
            "select ts, gap_bps, episode_start, episode_intervals from marts.rpt_mark_last_gap order by ts"
        ).fetchall()
        # threshold 50 bps: 100 bps and 80 bps form one episode, -100 bps another
        assert [(r[0], round(r[1], 6), r[2], r[3]) for r in rows] == [
            (t(1), 100.0, t(1), 2),
            (t(2), 80.0, t(1), 2),
            (t(4), -100.0, t(4), 1),
        ]
        build_views(con, {"mark_last_gap_threshold_bps": 90.0})
        assert [
            r[0] for r in con.execute("select ts from marts.rpt_mark_last_gap order by ts").fetchall()
        ] == [
            t(1),
            t(4),
        ]
        build_views(con)  # the documented default, 5 bps: the 10 bps hour joins, one 4-hour episode
        episodes = con.execute(
            "select distinct episode_start, episode_intervals from marts.rpt_mark_last_gap"
        ).fetchall()
        assert episodes == [(t(1), 4)]


def test_vendor_divergence_side_by_side(warehouse) -> None:  # type: ignore[no-untyped-def]
    with warehouse.writer() as con:
        build_views(con)
        insert_prices(
            con,
            [
                {
                    "vendor": "aperiodic",
                    "ts": t(0),
                    "mark_price": 100.0,
                    "last_price": 100.0,
                    "index_price": 99.0,
                },
                {"vendor": "kaiko", "ts": t(0), "mark_price": 99.5, "last_price": 100.0, "index_price": 99.0},
                {
                    "vendor": "aperiodic",
                    "ts": t(1),
                    "mark_price": 100.0,
                    "last_price": 100.0,
                },  # kaiko has no 01:00
            ],
        )
        refresh_marts(con, [date(2024, 1, 1)], only={"rpt_vendor_divergence"})
        rows = con.execute(
            "select vendor_a, vendor_b, ts, mark_diff_bps, index_diff_bps, last_diff_bps "
            "from marts.rpt_vendor_divergence"
        ).fetchall()
    assert len(rows) == 1
    vendor_a, vendor_b, ts, mark_bps, index_bps, last_bps = rows[0]
    assert (vendor_a, vendor_b, ts) == ("aperiodic", "kaiko", t(0))
    assert mark_bps == pytest.approx((100 - 99.5) / 99.5 * 10_000)  # 50.2513 bps
    assert index_bps == 0 and last_bps == 0


@pytest.fixture
def future_coverage(warehouse):  # type: ignore[no-untyped-def]
    """rpt_coverage of one Deribit future (CayøLargo 10-minute snapshots) given its expiry, its first
    snapshot, how many there are and which one is missing."""

    def coverage(fut: str, expiry: str, first: datetime, snapshots: int, missing: int) -> tuple:  # type: ignore[type-arg]
        with warehouse.writer() as con:
            build_views(con)
            con.execute(
                "insert into ref.instrument values ('deribit', ?, 'future', 'BTC', 'USD', 'BTC', ?, 10, null)",
                [fut, expiry],
            )
            con.execute(
                "insert into raw.load_log (vendor, venue, instrument_key, timestamp_type, interval, month, rows, files, loaded_at) values ('cayolargo', 'deribit', ?, 'exchange', '10m', '2024-01-01', 1, 1, "
                "'2024-02-01 00:00:00+00')",
                [fut],
            )
            insert_prices(
                con,
                [
                    {
                        "vendor": "cayolargo",
                        "venue": "deribit",
                        "instrument_key": fut,
                        "interval": "10m",
                        "source_interval": "10m",
                        "ts": first + timedelta(minutes=10 * i),
                        "mark_price": 1.0,
                        "last_price": 1.0,
                    }
                    for i in range(snapshots)
                    if i != missing
                ],
            )
            refresh_marts(con, [date(2024, 1, 1)], only={"rpt_coverage"})
            row = con.execute(
                "select expected_rows, loaded_rows, missing_intervals, last_ts from marts.rpt_coverage "
                "where instrument_key = ?",
                [fut],
            ).fetchone()
        assert row is not None
        return tuple(row)

    return coverage


def test_coverage_expects_a_dated_future_from_its_first_observation(future_coverage) -> None:  # type: ignore[no-untyped-def]
    # listed 2024-01-31 22:00: 12 ten-minute snapshots to the month end, one of them missing
    first = datetime(2024, 1, 31, 22, tzinfo=UTC)
    row = future_coverage("future-BTC-USD:BTC-20261225", "2026-12-25 08:00:00+00", first, 12, 5)
    assert row[:3] == (12, 11, 1)


def test_coverage_of_a_future_counts_one_missing_snapshot_before_its_expiry_snapshot(future_coverage) -> None:  # type: ignore[no-untyped-def]
    """A snapshot vendor also sends the snapshot at the expiry instant; it is no expected interval,
    so it must not make up for a real missing one."""
    # snapshots 06:00 .. 08:00 (the expiry) every ten minutes, 07:00 missing: the window
    # [06:00, 08:00) expects 12, 11 of them are there
    first = datetime(2024, 1, 31, 6, tzinfo=UTC)
    row = future_coverage("future-BTC-USD:BTC-20240131", "2024-01-31 08:00:00+00", first, 13, 6)
    assert row == (12, 11, 1, datetime(2024, 1, 31, 8, tzinfo=UTC))
