"""Load Kaiko months into the warehouse: page through each instrument-month, validate, replace.

Shape of a run: one ``next_url`` chain per (instrument, interval, month), run by a bounded pool
of threads (the HttpClient's rate limit is shared by all of them); each chain's rows converted at
the boundary, de-duplicated and validated; months written in batches, each batch one transaction
(delete the months' rows, insert, log), like Aperiodic's. So after any failure each month holds
its old rows or its new ones, never a mix. A month Kaiko answers with no rows keeps what it had
(the vendor may have narrowed the key's access range; an empty answer is no reason to delete).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial

import duckdb
import pyarrow as pa

from pipelines.months import month_bounds
from pipelines.progress import Ticker
from pipelines.reference import NO_REFERENCE, Reference
from pipelines.sources.batches import fetch_and_write
from pipelines.sources.kaiko.client import KaikoClient
from pipelines.sources.kaiko.mapping import KaikoCode
from pipelines.sources.kaiko.schema import validate_month
from pipelines.sources.kaiko.source import SOURCE
from pipelines.storage import Target, Warehouse, read_sql

log = logging.getLogger("markhouse.kaiko")

VENDOR = "kaiko"
TIMESTAMP_TYPE = "exchange"
RAW_TABLE = "raw.kaiko_derivative_price"
PARTITION_KEYS = ("venue", "instrument_key", "interval", "month")
LOG_KEYS = ("vendor", "venue", "instrument_key", "timestamp_type", "interval", "month")


@dataclass(frozen=True)
class Series:
    """One instrument at one interval, with Kaiko's name for it."""

    venue: str
    instrument_key: str
    code: KaikoCode
    interval: str


@dataclass(frozen=True)
class StagedMonth:
    series: Series
    month: date
    rows: pa.Table  # validated, de-duplicated, ROWS_SCHEMA
    pages: int
    bytes: int
    duplicates: int

    @property
    def label(self) -> str:
        return month_label(self.series, self.month)


@dataclass
class LoadReport:
    months: list[date]
    rows: int = 0
    pages: int = 0
    bytes: int = 0
    duplicates: int = 0
    transactions: int = 0
    rows_per_month: dict[str, int] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    seconds: float = 0.0


Progress = Callable[[str], None]


def month_label(series: Series, month: date) -> str:
    return f"kaiko {series.code} {series.interval} {month:%Y-%m}"


def fetch_month(client: KaikoClient, series: Series, month: date) -> StagedMonth:
    """Every page of one instrument-month, validated; raises with the month named."""
    start, end = month_bounds(month)
    fetched = client.fetch(series.code, series.interval, start, end)
    rows, duplicates = validate_month(fetched.rows, month_label(series, month), start, end)
    return StagedMonth(series, month, rows, fetched.pages, fetched.bytes, duplicates)


def load_months(
    client: KaikoClient,
    warehouse: Warehouse,
    series: Iterable[Series],
    months: Iterable[date],
    *,
    workers: int = 4,
    months_per_transaction: int = 12,
    progress: Progress = log.info,
    before_commit: Callable[[], None] | None = None,
    reference: Reference = NO_REFERENCE,
) -> LoadReport:
    """Replace ``months`` of every series with what Kaiko serves now; raises on the first bad
    page or final HTTP error (batches already committed stay, the failing batch changes nothing)."""
    started = time.perf_counter()
    months = sorted(set(months))
    series = list(series)
    report = LoadReport(months)
    if not months or not series:
        return report

    def write(con: duckdb.DuckDBPyConnection, staged: list[StagedMonth]) -> None:
        for s in staged:
            report.pages += s.pages
            report.bytes += s.bytes
            report.duplicates += s.duplicates
            if s.rows.num_rows == 0:
                report.empty.append(s.label)
                progress(f"{s.label}: Kaiko served no rows; existing rows kept")
            elif s.duplicates:
                progress(f"{s.label}: {s.duplicates} repeated row(s) dropped")
        loaded = [s for s in staged if s.rows.num_rows]
        if loaded:
            _write_batch(con, loaded, report, reference.then(con, before_commit))

    def on_batch(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        progress(
            f"kaiko: {done}/{total} months written, {report.rows:,} rows in "
            f"{report.pages} pages, {report.rows / max(elapsed, 1e-9):,.0f} rows/s"
        )

    fetch_and_write(
        warehouse,
        {m: [partial(fetch_month, client, s, m) for s in series] for m in months},
        write,
        workers=workers,
        months_per_transaction=months_per_transaction,
        on_batch=on_batch,
        thread_name="kaiko-page",
        ticker=Ticker("kaiko", "instrument-months", len(series) * len(months), progress),
        rows_of=lambda staged: staged.rows.num_rows,
    )
    report.seconds = time.perf_counter() - started
    return report


def _write_batch(
    con: duckdb.DuckDBPyConnection,
    staged: list[StagedMonth],
    report: LoadReport,
    before_commit: Callable[[], None] | None,
) -> None:
    parts = []
    for s in staged:
        n = s.rows.num_rows
        keys = {
            "venue": pa.repeat(s.series.venue, n),
            "instrument_key": pa.repeat(s.series.instrument_key, n),
            "interval": pa.repeat(s.series.interval, n),
            "month": pa.repeat(pa.scalar(s.month, pa.date32()), n),
        }
        parts.append(pa.Table.from_arrays([*keys.values(), *s.rows.columns], [*keys, *s.rows.column_names]))
    rows = pa.concat_tables(parts)
    partitions = pa.Table.from_pylist(
        [
            {
                "vendor": VENDOR,
                "venue": s.series.venue,
                "instrument_key": s.series.instrument_key,
                "timestamp_type": TIMESTAMP_TYPE,
                "interval": s.series.interval,
                "month": s.month,
                "rows": s.rows.num_rows,
                "files": s.pages,  # load_log.files: pages, for a paginated vendor
            }
            for s in staged
        ]
    )
    expected = rows.num_rows
    result = Warehouse.replace_partitions(
        con,
        partitions=partitions.select(list(LOG_KEYS)),
        targets=[
            Target(RAW_TABLE, SOURCE.load_sql("derivative_price"), PARTITION_KEYS),
            Target("raw.load_log", read_sql("load/load_log")),
        ],
        params={"loaded_at": datetime.now(UTC)},
        registered={"staged_rows": rows, "staged_partitions": partitions},
        before_commit=before_commit,
        expected_rows=expected,
    )
    report.rows += result.rows
    report.transactions += 1
    for s in staged:
        key = f"{s.month:%Y-%m}"
        report.rows_per_month[key] = report.rows_per_month.get(key, 0) + s.rows.num_rows
