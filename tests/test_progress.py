"""Progress a person can follow: lines while the writer waits, with units, rows, rate and ETA."""

from __future__ import annotations

import io
import logging
import threading
import time
from datetime import date
from pathlib import Path

from pipelines.progress import TerminalHandler, Ticker
from pipelines.sources.loader import fetch_and_write
from pipelines.warehouse.lake import Warehouse


def test_the_writer_ticks_while_fetches_are_still_running(tmp_path: Path) -> None:
    """Two jobs of 100 and 250 rows; the second is held until a progress line has been seen, so
    the line must come from the waiting writer, not from a finished batch."""
    release = threading.Event()
    lines: list[str] = []

    def emit(line: str) -> None:
        lines.append(line)
        release.set()

    def arrived(rows: int) -> int:  # a fetch counts its rows as they arrive
        ticker.rows_arrived(rows)
        return rows

    def held() -> int:
        assert release.wait(timeout=60), "no progress line while waiting"
        return arrived(250)

    ticker = Ticker("kaiko", "instrument-months", 2, emit, every=0.05)
    written: list[list[int]] = []
    fetch_and_write(
        Warehouse(tmp_path / "wh.duckdb"),
        {date(2026, 4, 1): [lambda: arrived(100)], date(2026, 5, 1): [held]},
        lambda con, batch: written.append(batch),
        workers=2,
        months_per_transaction=12,
        on_batch=lambda done, total: None,
        ticker=ticker,
    )
    assert written == [[100, 250]]
    first = lines[0]
    assert first.startswith("kaiko: ") and " rows, " in first and "rows/s" in first and "elapsed" in first
    assert ticker.line().startswith("kaiko: 2/2 instrument-months, 350 rows, ")  # everything counted


def test_a_line_has_units_rows_rate_and_eta() -> None:
    lines: list[str] = []
    ticker = Ticker("cayolargo", "coin-months", 4, lines.append, every=0)
    ticker.unit_done(1000)
    ticker.tick()
    assert lines[0].startswith("cayolargo: 1/4 coin-months, 1,000 rows, ")
    assert ", ETA " in lines[0]  # 3 of 4 to go
    for _ in range(3):
        ticker.unit_done(10)
    ticker.tick()
    assert lines[1].startswith("cayolargo: 4/4 coin-months, 1,030 rows, ") and "ETA" not in lines[1]


def record(text: str) -> logging.LogRecord:
    return logging.LogRecord("markhouse.progress", logging.INFO, __file__, 1, text, None, None)


def test_plain_lines_in_a_log_and_a_redrawn_bar_on_a_terminal() -> None:
    log = io.StringIO()
    plain = TerminalHandler(log)
    plain.emit(record("kaiko: 1/4 instrument-months, 10 rows, 5 rows/s, 2s elapsed"))
    plain.emit(record("kaiko bnce future btcusdt260327 1m 2026-04: Kaiko served no rows; existing rows kept"))
    assert log.getvalue().splitlines() == [
        "kaiko: 1/4 instrument-months, 10 rows, 5 rows/s, 2s elapsed",
        "kaiko bnce future btcusdt260327 1m 2026-04: Kaiko served no rows; existing rows kept",
    ]

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = TerminalHandler(tty)
    bar.emit(record("kaiko: 1/4 instrument-months, 10 rows, 5 rows/s, 2s elapsed"))
    bar.emit(record("kaiko: 2/4 instrument-months, 20 rows, 5 rows/s, 4s elapsed"))
    bar.close()
    out = tty.getvalue()
    assert out.count("\r\x1b[2K") == 2  # the same line redrawn
    assert "[##########..........] kaiko: 2/4" in out and out.endswith("\n")


def test_a_silent_stretch_gets_a_line_saying_who_is_still_at_work() -> None:
    """No more than the heartbeat passes without a line: the one after names the last speaker."""
    out = io.StringIO()
    handler = TerminalHandler(out, heartbeat=0.3)
    try:
        handler.emit(record("marts: 1/4 model-windows, 10 rows, 5 rows/s, 2s elapsed"))
        deadline = time.monotonic() + 10
        while "still working" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        handler.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "marts: 1/4 model-windows, 10 rows, 5 rows/s, 2s elapsed"
    assert lines[1].startswith("marts: still working, ") and lines[1].endswith(" since its last line")
    said = len(out.getvalue())
    time.sleep(0.6)  # closed: no heartbeat after the run's last line
    assert len(out.getvalue()) == said
