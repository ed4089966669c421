"""Progress a person can follow on long work: per vendor, units done, pages, rows, rate and ETA, to the
run's log and the logger ``markhouse.progress`` (the command's terminal); pages are counted as they
arrive (``pipelines.paging``), so a long walk shows movement before its first month is complete."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

log = logging.getLogger("markhouse.progress")

_pages: Counter[str] = Counter()
_pages_lock = threading.Lock()


def page_fetched(vendor: str) -> None:
    with _pages_lock:
        _pages[vendor.lower()] += 1


def pages_fetched(vendor: str) -> int:
    with _pages_lock:
        return _pages[vendor.lower()]


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Ticker:
    """One vendor's (or the marts') progress; ``tick`` emits at most every ``every`` seconds."""

    def __init__(self, what: str, unit: str, total: int, emit: Callable[[str], None], *, every: float = 2.0):
        self.what, self.unit, self.total, self.every = what, unit, total, every
        self._emit, self._lock = emit, threading.Lock()
        self._started = self._last = time.monotonic()
        self._pages_at_start = pages_fetched(what)
        self.units = self.rows = self.months_written = self.months = 0

    def unit_done(self, rows: int) -> None:
        with self._lock:
            self.units += 1
            self.rows += rows

    def rows_arrived(self, rows: int) -> None:
        """Rows of a unit still at work (a page), so a long walk's line shows them."""
        with self._lock:
            self.rows += rows

    def months_done(self, done: int, total: int) -> None:
        with self._lock:
            self.months_written, self.months = done, total

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        with self._lock:
            units, rows, written, months = self.units, self.rows, self.months_written, self.months
        pages = pages_fetched(self.what) - self._pages_at_start
        parts = [
            f"{self.what}: {units}/{self.total} {self.unit}",
            f"{pages:,} pages" if pages else "",
            f"{rows:,} rows, {rows / max(elapsed, 1e-9):,.0f} rows/s",
            f"{written}/{months} months written" if months else "",
            f"ETA {_duration(elapsed / units * (self.total - units))}" if 0 < units < self.total else "",
            f"{_duration(elapsed)} elapsed",
        ]
        return ", ".join(filter(None, parts))

    def tick(self, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < self.every:
                return
            self._last = now
        self._emit(self.line())


def to_run_log(info: Callable[[str], None]) -> Callable[[str], None]:
    """A progress callback for an asset: the run's log (Dagster UI) and the terminal logger."""

    def emit(message: str) -> None:
        info(message)
        log.info(message)

    return emit


HEARTBEAT_SECONDS = 4.0  # the longest a run on the terminal stays silent


class TerminalHandler(logging.Handler):
    """Progress lines (a redrawn bar on a TTY) and, after ``heartbeat`` seconds without one, who is at work."""

    def __init__(self, stream: IO[str], heartbeat: float = HEARTBEAT_SECONDS):
        super().__init__(logging.INFO)
        self.stream, self.tty = stream, stream.isatty()
        self._open_line = False
        self._said = self._written = time.monotonic()
        self._who = "markhouse"
        self._stop = threading.Event()
        threading.Thread(
            target=self._beat, args=(heartbeat,), name="markhouse-heartbeat", daemon=True
        ).start()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        with self.lock:  # type: ignore[union-attr]  # (createLock made it)
            self._said = time.monotonic()
            self._who = text.split(": ", 1)[0] if ": " in text else self._who
            self._write(text)

    def _write(self, text: str) -> None:
        bar = self.tty and ": " in text and " rows" in text and "/" in text  # a Ticker's line: redrawn
        ended = "\n" if self._open_line else ""
        self.stream.write(f"\r\x1b[2K{_bar(text)} {text[:140]}" if bar else f"{ended}{text}\n")
        self._open_line = bar
        self.stream.flush()
        self._written = time.monotonic()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(0.25):
            with self.lock:  # type: ignore[union-attr]
                now = time.monotonic()
                if now - self._written >= every and not self._stop.is_set():
                    self._write(
                        f"{self._who}: still working, {_duration(now - self._said)} since its last line"
                    )

    def close(self) -> None:
        self._stop.set()
        with self.lock:  # type: ignore[union-attr]
            if self._open_line:
                self.stream.write("\n")
                self.stream.flush()
                self._open_line = False
        super().close()


def _bar(text: str, width: int = 20) -> str:
    """A bar from the ``done/total`` after the source name."""
    try:
        done, total = (int(x) for x in text.split(": ", 1)[1].split(" ", 1)[0].split("/"))
    except ValueError:
        return ""
    filled = round(width * done / total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"


@contextmanager
def terminal_progress(stream: IO[str]) -> Iterator[None]:
    """Progress lines on ``stream`` while the block runs (the ``markhouse`` command's)."""
    handler = TerminalHandler(stream)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield
    finally:
        handler.close()
        log.removeHandler(handler)
