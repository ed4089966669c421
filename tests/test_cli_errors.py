"""`markhouse` failures: one line naming the cause and what to do, an exit code per kind, the
traceback only with --debug, and requests that can only produce nothing refused before a run."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster._utils.error import SerializableErrorInfo

from pipelines.cli import main
from pipelines.emulator.server import Emulator
from pipelines.errors import ExitCode, diagnose
from tests.conftest import isolated_environment, run_command

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "pipelines" / "universe" / "demo.yaml"


def backfill(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["backfill", "--start", "2026-05", "--end", "2026-05", *args])
    err = capsys.readouterr().err
    return code, err.splitlines()


@pytest.fixture
def universe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "universe.yaml"
    monkeypatch.setenv("MARKHOUSE_UNIVERSE", str(path))
    monkeypatch.setenv("MARKHOUSE_WAREHOUSE", str(tmp_path / "wh" / "markhouse.duckdb"))
    monkeypatch.setenv("MARKHOUSE_SERVING", str(tmp_path / "wh" / "serving.duckdb"))
    path.write_text(DEMO.read_text())
    return path


def test_a_universe_without_instruments_is_refused(universe: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    universe.write_text("start_month: 2026-01\n")
    code, lines = backfill(capsys)
    assert code == ExitCode.CONFIG == 3
    assert lines == [
        f"markhouse: {universe} lists no instruments: it has no aperiodic, kaiko, cayolargo section; "
        "add one (see pipelines/universe/demo.yaml)"
    ]


def test_a_vendor_the_universe_does_not_configure_is_refused(universe: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    universe.write_text(DEMO.read_text().split("\nkaiko:")[0])  # Aperiodic only
    code, lines = backfill(capsys, "--vendor", "kaiko")
    assert code == 3
    assert lines == [
        f"markhouse: {universe} has no kaiko section, so --vendor kaiko would load nothing; it configures aperiodic"
    ]


def test_an_instrument_the_chosen_vendor_does_not_carry_is_refused(universe: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, lines = backfill(capsys, "--vendor", "kaiko", "--instrument", "perpetual-ETH-USDT:USDT")
    assert code == 3 and len(lines) == 1
    assert lines[0].startswith(
        f"markhouse: --instrument perpetual-ETH-USDT:USDT: kaiko does not carry it in {universe}"
    )
    assert lines[0].endswith("; aperiodic and cayolargo do")  # who does
    code, lines = backfill(capsys, "--instrument", "perpetual-DOGE-USDT:USDT")
    assert code == 3 and "none of aperiodic, kaiko, cayolargo carries it" in lines[0]


def test_a_broken_universe_names_the_entry(universe: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    universe.write_text(DEMO.read_text().replace("symbol: perpetual-ETH-USDT:USDT", "symbol: ETHUSDT", 1))
    code, lines = backfill(capsys)
    assert code == 3 and len(lines) == 1
    assert lines[0].startswith(f"markhouse: {universe}: aperiodic.instruments[1]:")
    assert "'ETHUSDT'" in lines[0] and "MARKHOUSE_UNIVERSE" in lines[0]


def test_an_unwritable_warehouse_is_refused_before_the_run(
    universe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MARKHOUSE_WAREHOUSE", str(blocker / "markhouse.duckdb"))
    code, lines = backfill(capsys)
    assert code == ExitCode.WAREHOUSE == 5
    assert lines[0].startswith(
        f"markhouse: cannot create {blocker} for {blocker / 'markhouse.duckdb'} (MARKHOUSE_WAREHOUSE)"
    )


def test_usage_errors_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["backfill", "--start", "2026-05", "--end", "2026-03"]) == 2
    assert capsys.readouterr().err == "markhouse: --end 2026-03 is before --start 2026-05\n"
    with pytest.raises(SystemExit) as exit_info:
        main(["backfill", "--start", "May", "--end", "2026-03"])
    assert exit_info.value.code == 2


def test_version(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == "markhouse 0.1.0\n"


def test_a_vendor_error_inside_the_run_is_one_line(tmp_path: Path) -> None:
    """Wrong key: one line naming the vendor and what to check, exit 4; --debug adds the detail."""
    with Emulator() as emu:
        env = {
            **os.environ,
            "MARKHOUSE_WAREHOUSE": str(tmp_path / "wh.duckdb"),
            "MARKHOUSE_SERVING": str(tmp_path / "serving.duckdb"),
            "APERIODIC_BASE_URL": emu.base_url("aperiodic"),
            "APERIODIC_API_KEY": "not-the-key",
            "PYTHONWARNINGS": "ignore",
        }
        args = [
            "backfill",
            "--start",
            "2026-05",
            "--end",
            "2026-05",
            "--vendor",
            "aperiodic",
        ]
        out = run_command("markhouse", *args, env=env)
        debug = run_command("markhouse", *args, "--debug", env=env)
    assert out.returncode == ExitCode.VENDOR == 4, out.stderr
    # progress lines, then the error: one line, the last
    lines = [line for line in out.stderr.splitlines() if "HTTP" in line or "rror" in line]
    assert len(lines) == 1 and lines[0].startswith("markhouse: aperiodic: HTTP 401"), out.stderr
    assert out.stderr.splitlines()[-1] == lines[0]
    assert "not-the-key" not in out.stderr  # the key is redacted
    assert lines[0].endswith("(APERIODIC_BASE_URL, APERIODIC_API_KEY) and the network, or try again later")
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert debug.returncode == 4 and "raise VendorHTTPError" in debug.stderr  # the stack
    assert "not-the-key" not in debug.stderr


def test_a_closed_port_fails_at_once_with_exit_4(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "MARKHOUSE_WAREHOUSE": str(tmp_path / "wh.duckdb"),
        "MARKHOUSE_SERVING": str(tmp_path / "serving.duckdb"),
        "KAIKO_BASE_URL": f"http://127.0.0.1:{port}",
        "PYTHONWARNINGS": "ignore",
    }
    out = run_command(
        "markhouse", "backfill", "--start", "2026-05", "--end", "2026-05", "--vendor", "kaiko", env=env
    )
    assert out.returncode == 4
    assert out.stderr.splitlines()[-1].startswith(
        "markhouse: kaiko: cannot reach the host: connection refused"
    )
    assert "retry" not in out.stderr


def error_info(
    cls_name: str, message: str, cause: SerializableErrorInfo | None = None
) -> SerializableErrorInfo:
    return SerializableErrorInfo(message=message, stack=[], cls_name=cls_name, cause=cause)


@pytest.mark.parametrize(
    ("cls_name", "message", "code", "line"),
    [
        (
            "Failure",
            "dagster._core.definitions.events.Failure: instrument(s) not in the Kaiko universe: ['x']\n",
            ExitCode.CONFIG,
            "markhouse: instrument(s) not in the Kaiko universe: ['x'] -> fix that entry",
        ),
        (
            "IOException",
            '_duckdb.IOException: IO Error: Cannot open file "/ro/wh.duckdb": Read-only file system\n',
            ExitCode.WAREHOUSE,
            'markhouse: IO Error: Cannot open file "/ro/wh.duckdb": Read-only file system -> check that the path',
        ),
        (
            "FileValidationError",
            "pipelines.sources.aperiodic.schema.FileValidationError: aperiodic file x.parquet: column mark_price missing\n",
            ExitCode.VENDOR,
            "markhouse: aperiodic file x.parquet: column mark_price missing -> check the vendor's base URL and API key (APERIODIC_BASE_URL",
        ),
        (
            "DagsterExecutionInterruptedError",
            "dagster._core.errors.DagsterExecutionInterruptedError\n",
            ExitCode.INTERRUPTED,
            "markhouse: interrupted (Ctrl-C) -> months already committed stay; run the same backfill again",
        ),
        (
            "KeyError",
            "KeyError: 'boom'\n",
            ExitCode.PROBLEMS,
            "markhouse: KeyError: 'boom' -> run again with --debug for the traceback",
        ),
    ],
)
def test_the_cause_inside_dagsters_wrapper_decides(
    cls_name: str, message: str, code: ExitCode, line: str
) -> None:
    wrapped = error_info(
        "DagsterExecutionStepExecutionError",
        'dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op "x":\n',
        error_info(cls_name, message),
    )
    diagnosis = diagnose(wrapped)
    assert diagnosis.code == code
    assert diagnosis.line().startswith(line)
    assert "\n" not in diagnosis.line()


def test_an_instrument_the_vendor_does_not_serve_is_a_configuration_error(tmp_path: Path) -> None:
    """The universe may list okx-perps, but the emulator serves Binance only (it answers 404), and a
    future has no rows after its expiry: both end with exit 3 and one line naming what to change,
    not with "0 rows" and a republished serving copy."""
    universe = tmp_path / "okx.yaml"
    universe.write_text(
        "start_month: 2026-01\n"
        "aperiodic:\n"
        "  instruments:\n"
        "    - {venue: okx-perps, symbol: perpetual-BTC-USDT:USDT}\n"
    )
    env = {
        **os.environ,
        "MARKHOUSE_WAREHOUSE": str(tmp_path / "wh.duckdb"),
        "MARKHOUSE_SERVING": str(tmp_path / "serving.duckdb"),
        "PYTHONWARNINGS": "ignore",
    }
    april = ["backfill", "--start", "2026-04", "--end", "2026-04"]
    okx = run_command("markhouse", *april, env={**env, "MARKHOUSE_UNIVERSE": str(universe)})
    assert okx.returncode == 3, okx.stderr[-2000:]
    line = okx.stderr.splitlines()[-1]
    assert line.startswith(
        "markhouse: aperiodic: HTTP 404: Symbol not found (Symbol 'perpetual-BTC-USDT:USDT' not found on okx-perps)"
    )
    assert line.endswith(
        "-> the vendor does not serve it: check the venue and symbol in the universe (MARKHOUSE_UNIVERSE)"
    )
    expired = run_command(
        "markhouse", *april, "--vendor", "kaiko", "--instrument", "future-BTC-USDT:USDT-20260327", env=env
    )
    assert expired.returncode == 3, expired.stderr[-2000:]
    assert expired.stderr.splitlines()[-1].startswith(
        "markhouse: kaiko served no rows for future-BTC-USDT:USDT-20260327 in 2026-04..2026-04: it does not carry them"
    )
    assert not (tmp_path / "serving.duckdb").exists()  # nothing published by either


def test_status_help_names_the_freshness_setting_not_a_copy_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The --max-age-hours help shows the one default (pipelines.settings), whatever it is."""
    import pipelines.cli as cli

    monkeypatch.setattr(cli, "MAX_AGE_HOURS", 12.5)
    status = cli.build_parser()._subparsers._group_actions[0].choices["status"]  # type: ignore[union-attr]
    (option,) = [a for a in status._actions if a.dest == "max_age_hours"]
    assert option.help == "freshness bound (default MARKHOUSE_MAX_AGE_HOURS or 12.5)"


HOSTILE_UNIVERSES = {
    # a year past any date: int() gives it, date() overflowed (a 44-line OverflowError before)
    "huge start_month": (
        "start_month: 99999999999999999999-01\ncayolargo:\n  coins: [BTC]\n",
        "start_month must be YYYY-MM, got '99999999999999999999-01'",
    ),
    # the YAML composer recursed once per level: a RecursionError before
    "nested 5,000 deep": (
        "start_month: 2026-01\ncayolargo:\n  coins: " + "[" * 5000 + "]" * 5000 + "\n",
        "line 3 is not valid YAML: nested deeper than 10 levels (a universe needs 4)",
    ),
    # 15,000 lines of YAML took 2.4 s to parse in pure Python before the repeat was found
    "15,000 repeated instruments": (
        "start_month: 2026-01\nkaiko:\n  instruments:\n"
        + "    - {venue: binance-futures, symbol: perpetual-BTC-USDT:USDT}\n" * 15_000,
        "kaiko.instruments[1]: perpetual-BTC-USDT:USDT on binance-futures is listed twice",
    ),
}


def _backfill_in_a_fresh_process(tmp_path: Path, universe: str, *months: str) -> tuple[int, list[str], bool]:
    """Exit code, stderr lines, and whether Dagster was imported: a refusal before the run never
    pays for loading it (about 1.5 s of the 2 s a bad input may take to be answered)."""
    path = tmp_path / "universe.yaml"
    path.write_text(universe)
    script = (
        "import sys\nfrom pipelines.cli import main\n"
        "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "print(code, 'dagster' in sys.modules)"
    )
    env = isolated_environment(tmp_path, MARKHOUSE_UNIVERSE=str(path))
    out = run_command("python", "-c", script, "backfill", "--start", months[0], "--end", months[-1], env=env)
    code, dagster = out.stdout.split()
    return int(code), out.stderr.splitlines(), dagster == "True"


@pytest.mark.parametrize("case", HOSTILE_UNIVERSES)
def test_a_hostile_universe_is_one_line_before_the_run(tmp_path: Path, case: str) -> None:
    body, message = HOSTILE_UNIVERSES[case]
    code, lines, dagster = _backfill_in_a_fresh_process(tmp_path, body, "2026-05")
    assert (code, dagster, len(lines)) == (ExitCode.CONFIG, False, 1)
    assert lines[0].startswith("markhouse: ") and str(tmp_path / "universe.yaml") in lines[0]
    assert message in lines[0] and lines[0].endswith(
        "(the universe file is MARKHOUSE_UNIVERSE) or the command line"
    )


def test_months_outside_the_universe_or_a_calendar_are_refused_before_the_run(tmp_path: Path) -> None:
    body = "start_month: 2026-01\ncayolargo:\n  coins: [BTC]\n"
    this_month = datetime.now(UTC).strftime("%Y-%m")
    code, lines, dagster = _backfill_in_a_fresh_process(tmp_path, body, "2025-12", "2026-01")
    assert (code, dagster) == (ExitCode.USAGE, False)
    assert lines == [
        f"markhouse: months must lie within 2026-01 .. {this_month} (start_month in {tmp_path / 'universe.yaml'})"
    ]
    code, lines, _ = _backfill_in_a_fresh_process(tmp_path, body, "99999999999999999999-01")
    assert code == ExitCode.USAGE
    assert lines[-1].endswith("error: argument --start: expected YYYY-MM, got '99999999999999999999-01'")


def test_import_without_a_previous_layout_file_says_so(universe: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """It said the file "is not a DuckDB warehouse file" (it did not exist) and exited 5."""
    legacy = universe.parent / "wh" / "markhouse.duckdb"  # beside MARKHOUSE_WAREHOUSE, as documented
    assert main(["import-duckdb"]) == ExitCode.CONFIG
    assert capsys.readouterr().err == (
        f"markhouse: no previous-layout warehouse at {legacy}: nothing to import "
        "(`markhouse import-duckdb PATH` names another file)\n"
    )
