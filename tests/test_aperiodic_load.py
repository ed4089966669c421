"""The Aperiodic source against the local emulator: what lands, and what faults leave behind."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

from pipelines.emulator.server import Emulator
from pipelines.http import VendorHTTPError
from pipelines.sources.aperiodic.client import AperiodicClient
from pipelines.sources.aperiodic.load import FileValidationError, Series, load_months, validate_files
from pipelines.sources.aperiodic.load import load as load_request
from pipelines.sources.aperiodic.source import parse_section
from pipelines.sources.source import LoadRequest
from pipelines.warehouse.lake import Warehouse
from tests.conftest import FAST_RETRY, month_counts, raw_rows

RAW = "aperiodic_derivative_price"
BTC = "perpetual-BTC-USDT:USDT"
ETH = "perpetual-ETH-USDT:USDT"
BOTH = [Series("binance-futures", s, "1h", "exchange") for s in (BTC, ETH)]
MARCH, APRIL, MAY = date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)
BTC_MARCH_FILE = f"{BTC}/2026-03.parquet"


def load(client: AperiodicClient, warehouse: Warehouse, months: list[date], series=BOTH):  # type: ignore[no-untyped-def]
    return load_months(client, warehouse, series, months, workers=4, progress=lambda _: None)


def test_loads_monthly_and_daily_files_with_exact_row_counts(aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    report = load(aperiodic, warehouse, [MARCH, APRIL, MAY])
    # by hand: March 31 days x 24 h, April 30 x 24, May = the 16 complete days before the
    # emulator's today (2026-05-17), served as daily files
    expected = {"2026-03": 744, "2026-04": 720, "2026-05": 384}
    assert month_counts(warehouse, RAW) == {(k, m): n for k in (BTC, ETH) for m, n in expected.items()}
    assert report.rows == 2 * (744 + 720 + 384)
    assert report.files == 2 * (1 + 1 + 16)
    with warehouse.writer() as con:
        dup = con.execute(
            "select count(*) from (select instrument_key, ts from raw.aperiodic_derivative_price "
            "group by all having count(*) > 1)"
        ).fetchone()
    assert dup == (0,)


def test_real_values_arrive_untouched(aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    load(aperiodic, warehouse, [date(2024, 3, 1)], series=BOTH[:1])
    with warehouse.writer() as con:
        price = con.execute(
            "select last_price from raw.aperiodic_derivative_price where ts = ?",
            [datetime(2024, 3, 14, tzinfo=UTC)],
        ).fetchone()
        # the shipped sample is the source: its close for that hour, read independently
        sample = Path(__file__).resolve().parent.parent / "pipelines/emulator/data/binance_usdm_1h.parquet"
        mark = con.execute(
            f"select mark_close from read_parquet('{sample}') where symbol = 'BTCUSDT' "
            "and open_time = '2024-03-14 00:00:00+00'"
        ).fetchone()
        loaded_mark = con.execute(
            "select mark_price from raw.aperiodic_derivative_price where ts = ?",
            [datetime(2024, 3, 14, tzinfo=UTC)],
        ).fetchone()
    assert price == (72900.0,)  # BTC 1h close 2024-03-14 00:00, per shared/data/real/README.md
    assert mark is not None and loaded_mark == mark


def test_same_month_twice_leaves_identical_rows(aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    load(aperiodic, warehouse, [MARCH, APRIL])
    first = raw_rows(warehouse, RAW)
    load(aperiodic, warehouse, [MARCH])
    assert raw_rows(warehouse, RAW) == first
    assert len(first) == 2 * (744 + 720)


def test_expired_url_is_refreshed_and_the_month_loads(emulator, aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.inject("expired_url", target="list", match=BTC, times=1)
    load(aperiodic, warehouse, [MARCH, APRIL])
    assert month_counts(warehouse, RAW)[(BTC, "2026-03")] == 744
    refused = [r for r in emulator.requests if r.status == 403]
    assert len(refused) == 2  # both BTC files were expired, each re-listed once and fetched again


def test_429_with_retry_after_is_waited_out(emulator, aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.inject("status", target="file", match=BTC_MARCH_FILE, status=429, retry_after=1, times=2)
    load(aperiodic, warehouse, [MARCH])
    statuses = [r.status for r in emulator.requests if BTC_MARCH_FILE in r.path]
    assert statuses == [429, 429, 200]
    assert month_counts(warehouse, RAW)[(BTC, "2026-03")] == 744


def test_dropped_connection_is_retried(emulator, aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.inject("drop_connection", target="file", match=BTC_MARCH_FILE, times=1)
    load(aperiodic, warehouse, [MARCH])
    assert month_counts(warehouse, RAW)[(BTC, "2026-03")] == 744


def test_5xx_burst_past_the_retry_budget_fails_and_keeps_the_previous_month(
    emulator, aperiodic, warehouse
) -> None:  # type: ignore[no-untyped-def]
    load(aperiodic, warehouse, [MARCH])
    before = raw_rows(warehouse, RAW)
    emulator.faults.inject("status", target="file", match=BTC_MARCH_FILE, status=503, times=-1)
    (failed,) = load(aperiodic, warehouse, [MARCH]).failed  # ETH's file loaded (issue 24)
    assert isinstance(failed.error, VendorHTTPError)
    assert failed.label == f"aperiodic binance-futures {BTC} 1h exchange 2026-03"
    assert "503" in str(failed.error) and "gave up after 4 attempts" in str(failed.error)
    assert "2026-03.parquet" in str(failed.error)
    assert raw_rows(warehouse, RAW) == before


def test_one_daily_file_failing_keeps_its_whole_month(emulator, aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    load(aperiodic, warehouse, [MAY])
    before = raw_rows(warehouse, RAW)
    # May is served as daily files: the 3rd of BTC's fails past the retries, its 15 other days load
    emulator.faults.inject("status", target="file", match=f"{BTC}/2026-05-03", status=503, times=-1)
    (failed,) = load(aperiodic, warehouse, [MAY]).failed  # ETH's month loaded
    assert failed.label == f"aperiodic binance-futures {BTC} 1h exchange 2026-05"
    assert "2026-05-03" in str(failed.error)
    # replacing the month with the other 15 days would drop the 3rd's 24 rows: the month stays whole
    assert raw_rows(warehouse, RAW) == before
    assert month_counts(warehouse, RAW)[(BTC, "2026-05")] == 16 * 24


def _day(day: int, **values: float) -> tuple[str, datetime, datetime, pl.DataFrame]:
    """A daily file of May 2026's 24 hourly prices (all 100.0 unless ``values`` says, by hour)."""
    start = datetime(2026, 5, day)
    hours = [start + timedelta(hours=h) for h in range(24)]
    mark = [values.get(f"h{h}", 100.0) for h in range(24)]
    frame = pl.DataFrame(
        {"time": hours, "last_price": [100.0] * 24, "index_price": [100.0] * 24, "mark_price": mark}
    )
    return (
        f"aperiodic binance-futures {BTC} 1h exchange 2026-05-{day:02d}",
        start,
        start + timedelta(days=1),
        frame,
    )


def test_a_month_of_daily_files_is_validated_at_once_and_a_failure_names_its_file() -> None:
    validate_files([_day(1), _day(2), _day(3)], "derivative_price")  # a sound month passes
    with pytest.raises(
        FileValidationError, match=r"2026-05-02: failed validation: mark_price: greater_than\(0\)"
    ):
        validate_files([_day(1), _day(2, h5=0.0), _day(3)], "derivative_price")
    again = _day(3)
    again = (*again[:3], again[3].with_columns(pl.col("time") - timedelta(days=1)))  # the 2nd's hours
    with pytest.raises(
        FileValidationError, match="2026-05-03: failed validation: time: greater_than_or_equal"
    ):
        validate_files([_day(1), _day(2), again], "derivative_price")
    later = _day(1)  # a time of the 2nd that the 2nd's file lacks, filed under the 1st: inside the month
    moved = (
        pl.when(pl.col("time") == datetime(2026, 5, 1, 23))
        .then(datetime(2026, 5, 2, 23, 30))
        .otherwise("time")
    )
    later = (*later[:3], later[3].with_columns(moved.alias("time")))
    with pytest.raises(FileValidationError, match="2026-05-01: failed validation: time: less_than"):
        validate_files([later, _day(2), _day(3)], "derivative_price")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("truncate", "not a readable parquet file"),
        ("html_200", "not a readable parquet file (looks like an HTML page)"),
        (
            "drift_columns",
            "schema drift: unexpected columns ['funding_rate'], missing ['index_last_pct_change_ratio']",
        ),
    ],
)
def test_bad_file_is_named_and_nothing_is_written(emulator, aperiodic, warehouse, kind, message) -> None:  # type: ignore[no-untyped-def]
    load(aperiodic, warehouse, [MARCH, APRIL])
    before = raw_rows(warehouse, RAW)
    emulator.faults.inject(kind, target="file", match=f"{ETH}/2026-04.parquet", times=-1)
    (failed,) = load(aperiodic, warehouse, [MARCH, APRIL]).failed  # the other files loaded (issue 24)
    assert isinstance(failed.error, FileValidationError)
    assert f"aperiodic binance-futures {ETH} 1h exchange 2026-04: {message}" in str(failed.error)
    assert raw_rows(warehouse, RAW) == before


def test_html_listing_with_status_200_is_a_clear_error(emulator, aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.inject("html_200", target="list", times=1)
    (failed,) = load(aperiodic, warehouse, [MARCH]).failed  # the other series loaded (issue 24)
    assert failed.label.endswith("1h exchange 2026-03..2026-03 (listing)") and failed.months == [MARCH]
    with pytest.raises(VendorHTTPError, match="expected JSON but got text/html"):
        raise failed.error


def test_unknown_symbol_is_a_clear_error(aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(VendorHTTPError, match="HTTP 404"):
        load(
            aperiodic,
            warehouse,
            [MARCH],
            series=[Series("binance-futures", "perpetual-DOGE-USDT:USDT", "1h", "exchange")],
        )


def test_no_key_or_signature_in_logs_errors_or_warehouse(warehouse, caplog) -> None:  # type: ignore[no-untyped-def]
    secret = "sk-live-7f3a9c2e5b1d4f6a"
    caplog.set_level(logging.DEBUG)
    with Emulator(api_keys=[secret]) as emu:
        client = AperiodicClient(emu.base_url("aperiodic"), secret, retry=FAST_RETRY)
        emu.faults.inject("expired_url", target="list", times=1)
        emu.faults.inject("status", target="file", match=BTC_MARCH_FILE, status=503, times=1)
        load(client, warehouse, [MARCH])
        emu.faults.inject("status", target="file", match=BTC_MARCH_FILE, status=503, times=-1)
        (failed,) = load(client, warehouse, [MARCH]).failed  # ETH's file loaded (issue 24)
    text = caplog.text + str(failed.error)
    assert "X-Amz-Signature=REDACTED" in str(failed.error)  # the URL is shown, its signature is not
    assert secret not in text
    assert "X-Amz-Signature=" not in text.replace("X-Amz-Signature=REDACTED", "")
    assert "X-Amz-Credential=" not in text.replace("X-Amz-Credential=REDACTED", "")
    data = b"".join(p.read_bytes() for p in warehouse.path.parent.rglob("*") if p.is_file())
    assert secret.encode() not in data and b"X-Amz" not in data


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import date
    from pipelines.emulator.server import Emulator
    from pipelines.sources.aperiodic.client import AperiodicClient
    from pipelines.sources.aperiodic.load import Series, load_months
    from pipelines.warehouse.lake import Warehouse

    def pause():
        print("inside-transaction", flush=True)
        time.sleep(120)

    with Emulator() as emu:
        client = AperiodicClient(emu.base_url("aperiodic"), emu.api_key)
        series = [Series("binance-futures", s, "1h", "exchange")
                  for s in ("perpetual-BTC-USDT:USDT", "perpetual-ETH-USDT:USDT")]
        load_months(client, Warehouse(sys.argv[1]), series, [date(2026, 3, 1), date(2026, 4, 1)],
                    before_commit=pause, progress=lambda _: None)
    """
)


def test_run_killed_during_the_write_leaves_the_previous_content(aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    load(aperiodic, warehouse, [MARCH])
    with warehouse.writer() as con:  # mark the old content so old and new are distinguishable
        con.execute("update raw.aperiodic_derivative_price set last_price = -1")
    before = raw_rows(warehouse, RAW)
    files_before = set(warehouse.data_path.rglob("*.parquet"))
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(warehouse.path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "inside-transaction"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert raw_rows(warehouse, RAW) == before  # March as it was, April absent: old state, no mix
    with warehouse.writer():  # nothing the killed run wrote outlives the next writer's start
        pass
    assert set(warehouse.data_path.rglob("*.parquet")) == files_before


def test_the_next_writer_removes_what_a_killed_writer_left(aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    load(aperiodic, warehouse, [MARCH])
    kept = set(warehouse.data_path.rglob("*.parquet"))
    month = next(p for p in kept if "aperiodic_derivative_price" in str(p)).parent
    # what a writer killed mid-insert leaves: a parquet file no commit references, a partial
    # serving file
    orphan = month / "ducklake-00000000-0000-0000-0000-000000000000.parquet"
    orphan.write_bytes(next(iter(kept)).read_bytes())
    partial = warehouse.path.parent / ".serving.duckdb.12345.tmp"
    partial.write_bytes(b"partial")
    with warehouse.writer():
        pass
    assert set(warehouse.data_path.rglob("*.parquet")) == kept
    assert not partial.exists()


SNAPSHOT_READER = textwrap.dedent(
    """
    import sys
    from pipelines.warehouse.lake import Warehouse

    with Warehouse(sys.argv[1]).reader(snapshot=int(sys.argv[2])) as con:
        print(con.execute("select count(*) from t").fetchone()[0], flush=True)
        sys.stdin.readline()  # hold the snapshot while the other process writes
        print(con.execute("select count(*) from t").fetchone()[0], flush=True)
    """
)


def test_a_reader_in_another_process_never_blocks_the_writer_and_keeps_its_snapshot(warehouse) -> None:  # type: ignore[no-untyped-def]
    from pipelines.warehouse.lake import current_snapshot

    with warehouse.writer() as con:
        con.execute("create table if not exists t (x int)")
        con.execute("insert into t values (1), (2)")
        snapshot = current_snapshot(con)
    reader = subprocess.Popen(
        [sys.executable, "-c", SNAPSHOT_READER, str(warehouse.path), str(snapshot)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "2"
        started = time.monotonic()
        with warehouse.writer(wait_seconds=5) as con:  # the reader is open: no wait, no lock error
            con.execute("insert into t values (3)")
            assert con.execute("select count(*) from t").fetchone() == (3,)
        assert time.monotonic() - started < 5
        assert reader.poll() is None  # the write finished while the reader still held its snapshot
        reader.stdin.write("go\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "2"  # its snapshot, not the new commit
    finally:
        reader.wait(timeout=30)
    assert reader.returncode == 0


def test_replace_rolls_back_when_the_insert_count_differs_from_what_was_validated(warehouse) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    from pipelines.warehouse.lake import Target

    with warehouse.writer() as con:
        con.execute("create table t (k varchar, v int)")
        con.execute("insert into t values ('a', 1), ('a', 2)")
        keys = pa.table({"k": ["a"]})
        with pytest.raises(RuntimeError, match="t: inserted 1 rows but validated 2; nothing written"):
            Warehouse.replace_partitions(
                con, partitions=keys, targets=[Target("t", "insert into t values ('a', 9)")], expected_rows=2
            )
        assert con.execute("select v from t order by v").fetchall() == [(1,), (2,)]  # the old rows, whole


def test_an_instruments_own_intervals_decide_its_series(emulator, aperiodic, warehouse) -> None:  # type: ignore[no-untyped-def]
    """An instrument's own ``intervals`` in the universe override its section's, as on Kaiko."""
    section = parse_section(
        {
            "intervals": ["1h"],
            "instruments": [
                {"venue": "binance-futures", "symbol": BTC},
                {"venue": "binance-futures", "symbol": ETH, "intervals": ["4h"]},
            ],
        },
        "u.yaml: aperiodic",
    )
    resource = SimpleNamespace(
        client=lambda: aperiodic,
        endpoint=lambda: (emulator.base_url("aperiodic"), emulator.api_key, emulator),  # the embedded one
        workers=2,
    )
    request = LoadRequest(section, "derivative_price", [], [MARCH], resource, warehouse, lambda _: None)
    assert load_request(request).rows == 744 + 31 * 6
    assert month_counts(warehouse, RAW, "instrument_key, interval") == {
        (BTC, "1h", "2026-03"): 744,
        (ETH, "4h", "2026-03"): 31 * 6,
    }
