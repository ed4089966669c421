"""Faults an operator meets, run in CI on small data so they stay fixed: killed runs, non-finite
numbers, transient HTTP answers, hostile universe files, leftovers of dead runs, errors that must
name their culprit. Each expected value is worked out by hand or read from a second, clean run."""

from __future__ import annotations

import math
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import DagsterInstance, DagsterRunStatus
from psutil import pid_exists as process_exists

from pipelines.emulator.server import Emulator
from pipelines.errors import ExitCode
from pipelines.http import VendorHTTPError
from pipelines.sources.aperiodic.client import AperiodicClient
from pipelines.sources.aperiodic.load import FileValidationError
from pipelines.sources.aperiodic.load import Series as AperiodicSeries
from pipelines.sources.aperiodic.load import load_months as load_aperiodic
from pipelines.sources.cayolargo.client import CayoLargoClient
from pipelines.sources.cayolargo.load import PageValidationError
from pipelines.sources.cayolargo.load import load_months as load_cayolargo
from pipelines.sources.kaiko.client import KaikoClient
from pipelines.sources.kaiko.load import Series as KaikoSeries
from pipelines.sources.kaiko.load import load_months as load_kaiko
from pipelines.sources.kaiko.source import KaikoCode
from pipelines.universe import UniverseError, load_universe
from pipelines.warehouse.concurrency import remove_stale_temporaries
from pipelines.warehouse.lake import Warehouse, WarehouseCorruptError
from pipelines.warehouse.serving import open_serving, publish_serving
from tests.conftest import FAST_RETRY, isolated_environment, raw_rows, run_command

REPO = Path(__file__).resolve().parent.parent
MARCH = date(2026, 3, 1)
BTC = "perpetual-BTC-USDT:USDT"
APERIODIC_BTC = [AperiodicSeries("binance-futures", BTC, "1h", "exchange")]
KAIKO_BTC = [KaikoSeries("binance-futures", BTC, KaikoCode("bnce", "perpetual-future", "btcusdt"), "1h")]
QUIET = {"progress": lambda _: None}


def aperiodic(emu: Emulator) -> AperiodicClient:
    return AperiodicClient(emu.base_url("aperiodic"), emu.api_key, retry=FAST_RETRY)


def kaiko(emu: Emulator) -> KaikoClient:
    return KaikoClient(emu.base_url("kaiko"), emu.api_key, retry=FAST_RETRY)


def cayolargo(emu: Emulator) -> CayoLargoClient:
    return CayoLargoClient(emu.base_url("cayolargo"), emu.api_key, retry=FAST_RETRY)


def load_march(emulator: Emulator, into: Warehouse, vendor: str) -> int:
    """March 2026 of ``vendor``'s BTC perpetual at 1h into ``into``, through a fresh client; the rows."""
    if vendor == "aperiodic":
        return load_aperiodic(aperiodic(emulator), into, APERIODIC_BTC, [MARCH], **QUIET).rows
    if vendor == "kaiko":
        return load_kaiko(kaiko(emulator), into, KAIKO_BTC, [MARCH], **QUIET).rows
    return load_cayolargo(cayolargo(emulator), into, ["BTC"], [MARCH], **QUIET).rows


RAW_TABLE = {
    "aperiodic": "aperiodic_derivative_price",
    "kaiko": "kaiko_derivative_price",
    "cayolargo": "cayolargo_futures",
}


# -- non-finite numbers ----------------------------------------------------------------------------

NON_FINITE = [(math.nan, "NaN"), (math.inf, "+inf"), (-math.inf, "-inf")]


def refused_reload(
    emulator: Emulator, warehouse: Warehouse, vendor: str, error: type[Exception], **fault: Any
) -> str:
    """Loads ``vendor``'s March, injects the non-finite ``fault`` and loads again: the second load
    raises ``error`` and leaves the raw table as the first load left it. The error's message."""
    load_march(emulator, warehouse, vendor)
    before = raw_rows(warehouse, RAW_TABLE[vendor])
    emulator.faults.inject("non_finite", **fault)
    with pytest.raises(error) as err:
        load_march(emulator, warehouse, vendor)
    assert raw_rows(warehouse, RAW_TABLE[vendor]) == before
    return str(err.value)


@pytest.mark.parametrize(("value", "shown"), NON_FINITE)
def test_aperiodic_non_finite_price_is_refused_and_nothing_written(
    emulator: Emulator, warehouse: Warehouse, value: float, shown: str
) -> None:
    message = refused_reload(
        emulator, warehouse, "aperiodic", FileValidationError, target="file", field="mark_price", value=value
    )
    # vendor, file, column and the first offending timestamp (the file's first row, 2026-03-01 00:00)
    assert message.startswith(f"aperiodic binance-futures {BTC} 1h exchange 2026-03")
    assert "binance-futures__perpetual-BTC-USDT_USDT__1h__exchange__2026-03.parquet" in message
    assert f"mark_price is {shown} at time 2026-03-01 00:00:00" in message


@pytest.mark.parametrize(("value", "shown"), NON_FINITE)
def test_kaiko_non_finite_price_is_refused_and_nothing_written(
    emulator: Emulator, warehouse: Warehouse, value: float, shown: str
) -> None:
    message = refused_reload(emulator, warehouse, "kaiko", VendorHTTPError, field="price", value=value)
    assert message.startswith("kaiko: page 1: bnce btcusdt 1h 2026-03-01T00:00:00.000Z..2026-04-01")
    assert f"last_price is {shown} at ts 2026-03-01 00:00:00+00:00" in message  # Kaiko's price = last
    assert "/v2/data/derivatives.v2/price?" in message  # the page's URL


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("mark_price", math.nan, "NaN"),
        ("open_interest", math.inf, "+inf"),
        ("funding_rate", -math.inf, "-inf"),
    ],
)
def test_cayolargo_non_finite_number_is_refused_and_nothing_written(
    emulator: Emulator, warehouse: Warehouse, field: str, value: float, shown: str
) -> None:
    message = refused_reload(  # the fault hits the first row
        emulator, warehouse, "cayolargo", PageValidationError, match="coin=BTC", field=field, value=value
    )
    assert message.startswith("cayolargo BTC") and "page 1 (from=2026-03-01T00:00:00Z)" in message
    assert f"{field} is {shown} at timestamp 2026-03-01 00:00:00+00:00 instrument_id " in message


# a subnormal, an overflowing and a zero price: positive-looking or finite, and no market's price
IMPLAUSIBLE = [(1e-320, "1e-320"), (1e308, "1e+308"), (0.0, "0.0")]
PRICE_RANGE = "outside the plausible range of a price, 1e-12 .. 1e+12 (MARKHOUSE_PLAUSIBLE_PRICE)"


@pytest.mark.parametrize(("value", "shown"), IMPLAUSIBLE)
def test_implausible_prices_are_refused_naming_the_range_and_nothing_written(
    emulator: Emulator, warehouse: Warehouse, value: float, shown: str
) -> None:
    load_march(emulator, warehouse, "aperiodic")
    load_march(emulator, warehouse, "kaiko")
    before = raw_rows(warehouse, "aperiodic_derivative_price"), raw_rows(warehouse, "kaiko_derivative_price")
    emulator.faults.inject("implausible", target="file", field="mark_price", value=value)
    with pytest.raises(FileValidationError) as file_err:
        load_march(emulator, warehouse, "aperiodic")
    emulator.faults.clear()
    emulator.faults.inject("implausible", field="mark_price", value=value)
    with pytest.raises(VendorHTTPError) as page_err:
        load_march(emulator, warehouse, "kaiko")
    assert f"mark_price is {shown} at time 2026-03-01 00:00:00: {PRICE_RANGE}" in str(file_err.value)
    assert f"mark_price is {shown} at ts 2026-03-01 00:00:00+00:00: {PRICE_RANGE}" in str(page_err.value)
    assert str(file_err.value).startswith(f"aperiodic binance-futures {BTC} 1h exchange 2026-03")
    assert str(page_err.value).startswith(
        "kaiko: page 1: bnce btcusdt 1h 2026-03-01T00:00:00.000Z..2026-04-01"
    )
    after = raw_rows(warehouse, "aperiodic_derivative_price"), raw_rows(warehouse, "kaiko_derivative_price")
    assert after == before


def test_the_plausible_range_is_overridable(
    emulator: Emulator, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.faults.inject("implausible", target="file", field="mark_price", value=1e-9)  # a tiny token
    monkeypatch.setenv("MARKHOUSE_PLAUSIBLE_PRICE", "1e-6,1e7")
    with pytest.raises(FileValidationError, match=r"mark_price is 1e-09 .*1e-06 \.\. 1e\+07"):
        load_march(emulator, warehouse, "aperiodic")
    monkeypatch.setenv("MARKHOUSE_PLAUSIBLE_PRICE", "1e-10,1e7")
    emulator.faults.inject("implausible", target="file", field="mark_price", value=1e-9)
    load_march(emulator, warehouse, "aperiodic")
    with warehouse.writer() as con:
        low = con.execute("select min(mark_price) from raw.aperiodic_derivative_price").fetchone()
    assert low == (1e-9,)


def test_aperiodic_non_finite_ratio_loads_as_null(emulator: Emulator, warehouse: Warehouse) -> None:
    load_march(emulator, warehouse, "aperiodic")
    clean = raw_rows(warehouse, "aperiodic_derivative_price")
    emulator.faults.inject("non_finite", target="file", field="mark_last_pct_change_ratio", value=math.inf)
    load_march(emulator, warehouse, "aperiodic")
    with warehouse.writer() as con:
        cols = [c[0] for c in con.execute("describe raw.aperiodic_derivative_price").fetchall()]
    cols.remove("loaded_at")
    ratio = cols.index("mark_last_pct_change_ratio")
    after = raw_rows(warehouse, "aperiodic_derivative_price")
    # the first row (March 1st 00:00) has NULL where the vendor sent inf; every other value is as clean
    first = min(range(len(after)), key=lambda i: after[i][cols.index("ts")])
    assert after[first][ratio] is None and clean[first][ratio] is not None
    assert [r for i, r in enumerate(after) if i != first] == [r for i, r in enumerate(clean) if i != first]
    assert after[first][:ratio] == clean[first][:ratio]


# -- transient HTTP answers: the same bounded retry for every vendor and host ---------------------


@pytest.mark.parametrize("status", [500, 502, 504])
@pytest.mark.parametrize(
    ("vendor", "target", "match"),
    [
        ("aperiodic", "list", ""),
        ("aperiodic", "file", "2026-03.parquet"),
        ("kaiko", "list", "instrument=btcusdt"),
        ("cayolargo", "list", "coin=BTC"),
    ],
)
def test_transient_status_is_retried_on_every_host(
    emulator: Emulator, warehouse: Warehouse, vendor: str, target: str, match: str, status: int
) -> None:
    emulator.faults.inject("status", target=target, match=match, status=status, times=2)  # type: ignore[arg-type]

    loaded = load_march(emulator, warehouse, vendor)
    clean = Warehouse(warehouse.path.with_name("clean.sqlite"))
    assert (
        loaded == load_march(emulator, clean, vendor) > 0
    )  # as many rows as a fault-free load: 744 = 31 days x 24 h for the 1h series
    if vendor != "cayolargo":
        assert loaded == 744
    table = RAW_TABLE[vendor]
    assert raw_rows(warehouse, table) == raw_rows(clean, table)
    assert [r.status for r in emulator.requests].count(status) == 2  # both answers were retried


def test_dropped_connection_on_the_aperiodic_listing_is_retried(
    emulator: Emulator, warehouse: Warehouse
) -> None:
    emulator.faults.inject("drop_connection", target="list", times=1)
    assert load_march(emulator, warehouse, "aperiodic") == 744


# -- the universe file ------------------------------------------------------------------------------

DEMO = (REPO / "pipelines/universe/demo.yaml").read_text()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "universe.yaml"
    path.write_text(text)
    return path


def test_billion_laughs_is_refused_at_once_without_printing_the_structure(tmp_path: Path) -> None:
    laughs = 'start_month: 2026-01\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for name, prev in zip("bcdefghi", "abcdefgh", strict=True):
        laughs += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    started = time.monotonic()
    with pytest.raises(UniverseError) as err:
        load_universe(write(tmp_path, laughs))
    assert time.monotonic() - started < 5  # refused before any expansion (it would take minutes)
    assert "line 3" in str(err.value) and "YAML aliases (*a) are not allowed" in str(err.value)
    assert "lol" not in str(err.value)


def test_a_universe_file_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UniverseError, match=r"is 1048577 bytes; the limit is 1048576"):
        load_universe(write(tmp_path, "#" * (1 << 20) + "\n"))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("start_month: 2026-01", "start_month: 0001-01", "start_month 0001-01 is outside 2009-01 .. "),
        ("start_month: 2026-01", "start_month: 9999-12", "start_month 9999-12 is outside 2009-01 .. "),
        (
            "      symbol: perpetual-ETH-USDT:USDT\n",
            "      symbol: perpetual-ETH-USDT:USDT\n      funding_interval_hours: eight\n",
            "aperiodic.instruments[1]: funding_interval_hours must be a positive number, got 'eight'",
        ),
        (
            "      symbol: perpetual-ETH-USDT:USDT\n",
            "      symbol: perpetual-ETH-USDT:USDT\n      contract_size: -1\n",
            "aperiodic.instruments[1]: contract_size must be a positive number, got -1",
        ),
    ],
)
def test_universe_errors_name_the_file_and_the_entry(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = write(tmp_path, DEMO.replace(old, new, 1))
    with pytest.raises(UniverseError) as err:
        load_universe(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_a_long_entry_is_cut_in_the_error(tmp_path: Path) -> None:
    entry = "{" + ", ".join(f"k{i}: {i}" for i in range(200)) + "}"
    path = write(
        tmp_path,
        DEMO.replace(
            "    - venue: binance-futures\n      symbol: perpetual-BTC-USDT:USDT\n", f"    - {entry}\n", 1
        ),
    )
    with pytest.raises(UniverseError) as err:
        load_universe(path)
    assert "each instrument needs 'venue' and 'symbol'" in str(err.value) and len(str(err.value)) < 250


# -- the warehouse file ----------------------------------------------------------------------------


def test_a_corrupted_block_names_the_serving_file(warehouse: Warehouse, tmp_path: Path) -> None:
    serving = tmp_path / "serving.duckdb"
    with warehouse.writer() as con:
        con.execute("create table t as select range as i, random() as r from range(1000)")
        publish_serving(con, serving)
    with open(serving, "r+b") as f:  # a damaged block where the catalog of views lives
        for offset in range(4096, serving.stat().st_size, 4096):
            f.seek(offset)
            f.write(b"\xff" * 4096)
    with pytest.raises(WarehouseCorruptError) as err, open_serving(serving) as con:
        con.execute("select count(*) from t").fetchone()
    assert str(err.value).startswith(f"{serving} is damaged (")
    assert "markhouse backfill" in str(err.value)


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_leftovers_of_dead_runs_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead, live = dead_pid(), os.getpid()
    folder = tmp_path / "warehouse"
    (folder / ".staging" / f"aperiodic-{dead}-x1").mkdir(parents=True)
    (folder / ".staging" / f"aperiodic-{dead}-x1" / "a.parquet").write_bytes(b"x" * 1000)
    (folder / ".staging" / f"aperiodic-{live}-x2").mkdir()
    for pid in (dead, live):
        (folder / f".serving.duckdb.{pid}.tmp").write_bytes(b"partial copy")
    (folder / f".serving.duckdb.{dead}.tmp.wal").write_bytes(b"wal")
    (folder / "serving.duckdb").write_bytes(b"published")
    removed = remove_stale_temporaries(folder)
    assert sorted(p.name for p in removed) == sorted(
        [f"aperiodic-{dead}-x1", f".serving.duckdb.{dead}.tmp", f".serving.duckdb.{dead}.tmp.wal"]
    )
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert left == sorted(
        [".staging", f".staging/aperiodic-{live}-x2", f".serving.duckdb.{live}.tmp", "serving.duckdb"]
    )


def test_the_next_writer_start_removes_a_dead_runs_staging_folder(warehouse: Warehouse) -> None:
    stale = warehouse.path.parent / ".staging" / f"aperiodic-{dead_pid()}-abc"
    stale.mkdir(parents=True)
    with warehouse.writer():
        pass
    assert not stale.exists()


# -- killed backfills: the warehouse lock ------------------------------------------------------------

PAUSED_STEP = textwrap.dedent(
    """
    # sitecustomize of the paused backfill's process: it stops inside the writer section
    import os
    import time

    from pipelines.warehouse.lake import Warehouse

    def paused(*args, **kwargs):
        print("inside-writer", os.getpid(), flush=True)
        time.sleep(600)

    Warehouse.replace_partitions = staticmethod(paused)
    """
)
BACKFILL = ["backfill", "--start", "2026-03", "--end", "2026-03", "--vendor", "aperiodic"]


def environment(root: Path) -> dict[str, str]:
    return isolated_environment(root)


def markhouse(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_paused_backfill(tmp_path: Path, **popen: Any) -> tuple[subprocess.Popen[str], dict[str, str], int]:
    """A backfill stopped inside the writer section (the warehouse lock held, a transaction open):
    the command, its env, the pid of the process writing (the command's own)."""
    env = environment(tmp_path / "shared")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(PAUSED_STEP)
    child = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *BACKFILL],
        env={**env, "PYTHONPATH": str(hook)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        **popen,
    )
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 120)
    said, step = child.stdout.readline().split() if ready else ("", "0")
    if said != "inside-writer" or int(step) != child.pid:
        child.kill()
        child.wait(timeout=30)
        raise AssertionError(f"the paused backfill did not reach its writer section ({said!r})")
    return child, env, int(step)


@pytest.fixture
def paused_backfill(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str], int]]:
    child, env, step = start_paused_backfill(tmp_path)
    try:
        yield child, env, step
    finally:
        child.kill()
        child.wait(timeout=30)


def marts(serving: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(serving), read_only=True)
    try:
        names = [
            n
            for (n,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        ]
        return {
            name: con.execute(
                f"select * exclude (loaded_at) from marts.{name} order by all"
                if name == "rpt_coverage"
                else f"select * from marts.{name} order by all"
            ).fetchall()
            for name in sorted(names)
        }
    finally:
        con.close()


def test_a_killed_backfill_does_not_block_the_next(paused_backfill, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    child, env, step = paused_backfill
    child.kill()  # SIGKILL of the command while its step is inside the writer section: no cleanup runs
    child.wait(timeout=30)
    deadline = time.monotonic() + 30
    while process_exists(step) and time.monotonic() < deadline:  # the killed process is gone
        time.sleep(0.1)
    assert not process_exists(step)
    warehouse_dir = Path(env["MARKHOUSE_WAREHOUSE"]).parent
    assert list((warehouse_dir / ".staging").glob(f"aperiodic-{step}-*"))  # what the kill left
    (warehouse_dir / f".serving.duckdb.{child.pid}.tmp").write_bytes(b"a partial serving copy")

    second = markhouse(env, *BACKFILL, "--wait", "60")
    assert second.returncode == 0, second.stderr[-2000:]
    freed = [line for line in second.stderr.splitlines() if "the previous writer, run " in line]
    assert len(freed) == 1 and f"pid {child.pid} on " in freed[0] and "its process is gone" in freed[0]
    # the warehouse folder holds only what a run needs
    assert not list(warehouse_dir.glob(".*.tmp*"))
    assert not list((warehouse_dir / ".staging").iterdir())

    clean = environment(tmp_path / "clean")
    assert markhouse(clean, *BACKFILL).returncode == 0
    got, want = marts(Path(env["MARKHOUSE_SERVING"])), marts(Path(clean["MARKHOUSE_SERVING"]))
    assert got == want and sum(len(v) for v in want.values()) > 0


def test_a_backfill_waits_for_a_live_writer_and_says_for_whom(paused_backfill) -> None:  # type: ignore[no-untyped-def]
    child, env, step = paused_backfill
    waiting = markhouse(env, *BACKFILL, "--wait", "3", timeout=120)
    assert waiting.returncode == 5  # the warehouse exit code: another run holds it
    lines = waiting.stderr.splitlines()
    assert any(
        "waiting for run " in line and f"(markhouse backfill, pid {child.pid} on " in line for line in lines
    ), waiting.stderr[-2000:]
    gave_up = [
        re.search(r"gave up after (\d+)s: the warehouse is being written by run ", line) for line in lines
    ]
    waited = [int(m[1]) for m in gave_up if m]
    assert len(waited) == 1 and waited[0] >= 3  # the bound, give or take a loaded machine's seconds
    assert child.poll() is None and process_exists(step)  # the live run was left alone


def test_ctrl_c_stops_a_backfill_with_one_line_and_leaves_no_process(tmp_path: Path) -> None:
    """Ctrl-C signals the terminal's whole process group (the command, and any process it
    started). The user sees one line (no traceback), exit code 130, nothing of the interrupted
    month in the warehouse, and no process left behind."""
    # its own process group, as a terminal's foreground job
    child, env, step = start_paused_backfill(tmp_path, stderr=subprocess.PIPE, start_new_session=True)
    try:
        os.killpg(child.pid, signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
    assert child.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    said_lines = [line for line in stderr.splitlines() if "interrupted (Ctrl-C)" in line]
    assert said_lines == [
        "markhouse: interrupted (Ctrl-C) -> months already committed stay; run the same backfill again to finish"
    ]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(child.pid, 0)  # any process of the group still alive?
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"processes of the interrupted backfill are still running (step {step})")
    with Warehouse(env["MARKHOUSE_WAREHOUSE"]).writer() as con:  # the latest snapshot, published or not
        row = con.execute("select count(*) from raw.aperiodic_derivative_price").fetchone()
    assert row == (0,)
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:  # as the UI shows it
        assert [r.status for r in instance.get_runs()] == [DagsterRunStatus.CANCELED]


# -- one origin per vendor and warehouse --------------------------------------------------------------


def test_a_warehouse_refuses_to_mix_emulator_and_vendor_data(tmp_path: Path) -> None:
    """The demo's warehouse (embedded emulator) refuses a vendor's data for the same vendor, and a
    vendor's warehouse the emulator's, each in one line naming the settings, nothing written; the
    demo's status says it is the demo. (A separate emulator with a base URL stands in for the vendor:
    markhouse cannot tell it from a real host, which is the point.)"""
    universe = tmp_path / "universe.yaml"
    universe.write_text("start_month: 2026-01\ncayolargo:\n  coins: [BTC]\n")
    march = ["backfill", "--start", "2026-03", "--end", "2026-03"]

    def load_log(root: Path) -> list[tuple[str, str | None, int]]:
        with Warehouse(str(root / "warehouse" / "markhouse.sqlite")).reader() as con:
            return con.execute("select vendor, origin, count(*) from raw.load_log group by all").fetchall()

    demo = isolated_environment(tmp_path / "demo", MARKHOUSE_UNIVERSE=str(universe), PYTHONWARNINGS="ignore")
    assert run_command("markhouse", *march, env=demo).returncode == 0
    status = run_command("markhouse", "status", env=demo)
    assert status.stdout.splitlines()[0] == (
        "this warehouse is the demo: every row came from the embedded emulator (real data replayed, no vendor)"
    )
    before = load_log(tmp_path / "demo")
    assert [(v, o) for v, o, _ in before] == [("cayolargo", "emulator")]
    with Emulator() as vendor:
        real = {"CAYOLARGO_BASE_URL": vendor.base_url("cayolargo"), "CAYOLARGO_API_KEY": vendor.api_key}
        mixed = run_command("markhouse", *march, env={**demo, **real})
        assert mixed.returncode == ExitCode.CONFIG, mixed.stderr[-2000:]
        assert mixed.stderr.splitlines()[-1] == (
            "markhouse: cayolargo: this warehouse holds the embedded emulator's CayøLargo data (the demo), and "
            "CAYOLARGO_BASE_URL and CAYOLARGO_API_KEY point at the vendor, so this run would add real data to it; "
            "point MARKHOUSE_WAREHOUSE at a new warehouse for the vendor's data"
        )
        assert load_log(tmp_path / "demo") == before
        own = isolated_environment(
            tmp_path / "own", MARKHOUSE_UNIVERSE=str(universe), PYTHONWARNINGS="ignore"
        )
        assert run_command("markhouse", *march, env={**own, **real}).returncode == 0
    assert [(v, o) for v, o, _ in load_log(tmp_path / "own")] == [("cayolargo", "vendor")]
    back = run_command("markhouse", *march, env=own)  # the keys forgotten: the emulator would answer
    assert back.returncode == ExitCode.CONFIG, back.stderr[-2000:]
    assert back.stderr.splitlines()[-1] == (
        "markhouse: cayolargo: this warehouse holds CayøLargo's data from the vendor's API, and CAYOLARGO_BASE_URL "
        "and CAYOLARGO_API_KEY are unset, so this run would add the embedded emulator's data to it; set them, or "
        "point MARKHOUSE_WAREHOUSE at another warehouse"
    )
