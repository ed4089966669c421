"""Load Aperiodic months into the warehouse: list, download concurrently, validate, replace.

Shape of a run: one listing per series for the whole month range; every file downloaded by a
bounded pool of threads into a staging folder and validated there; months written in batches,
each batch one transaction (a transaction per month costs a checkpoint each, see
docs/benchmarks.md) while later downloads go on. Every month in a batch is replaced whole, so the
warehouse holds the old month or the new one, never a mix.

The same loop loads each metric (``derivative_price``, ``funding``, ``open_interest``) into its
own raw table; only the price metric is recorded in ``raw.load_log``, the coverage log of price
series (``rpt_coverage`` counts its rows against the intervals a month should hold, which a
sparse funding series would never meet).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.months import next_month
from pipelines.progress import Ticker
from pipelines.reference import NO_REFERENCE, Reference
from pipelines.sources.aperiodic.client import AperiodicClient, FileRef
from pipelines.sources.aperiodic.schema import validate_file
from pipelines.sources.aperiodic.source import SOURCE
from pipelines.sources.aperiodic.universe import PRICE_METRIC
from pipelines.sources.batches import fetch_and_write
from pipelines.storage import Target, Warehouse, read_sql

log = logging.getLogger("markhouse.aperiodic")

VENDOR = "aperiodic"
RAW_TABLES: dict[str, str] = {
    "derivative_price": "raw.aperiodic_derivative_price",
    "funding": "raw.aperiodic_funding",
    "open_interest": "raw.aperiodic_open_interest",
}
PARTITION_KEYS = ("venue", "instrument_key", "timestamp_type", "interval", "month")


@dataclass(frozen=True)
class Series:
    venue: str
    instrument_key: str
    interval: str
    timestamp_type: str


@dataclass(frozen=True)
class StagedFile:
    ref: FileRef
    path: Path
    rows: int
    size: int


@dataclass
class LoadReport:
    months: list[date]
    rows: int = 0
    files: int = 0
    bytes: int = 0
    transactions: int = 0
    rows_per_month: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


Progress = Callable[[str], None]


def load_months(
    client: AperiodicClient,
    warehouse: Warehouse,
    series: Iterable[Series],
    months: Iterable[date],
    *,
    workers: int = 8,
    months_per_transaction: int = 12,
    progress: Progress = log.info,
    before_commit: Callable[[], None] | None = None,
    reference: Reference = NO_REFERENCE,
    metric: str = PRICE_METRIC,
) -> LoadReport:
    """Replace ``months`` of every series' ``metric`` with what Aperiodic serves now; raises on the
    first bad file or final HTTP error (months already committed stay, the failing batch changes
    nothing)."""
    if metric not in RAW_TABLES:
        raise ValueError(f"unknown Aperiodic metric {metric!r}; known: {', '.join(RAW_TABLES)}")
    name = "aperiodic" if metric == PRICE_METRIC else f"aperiodic {metric}"
    started = time.perf_counter()
    months = sorted(set(months))
    series = list(series)
    report = LoadReport(months)
    if not months or not series:
        return report
    wanted = set(months)

    refs_by_month: dict[date, list[FileRef]] = defaultdict(list)
    for s in series:
        listed = client.list_files(
            s.venue,
            s.instrument_key,
            s.interval,
            s.timestamp_type,
            months[0],
            next_month(months[-1]) - timedelta(days=1),
            metric,
        )
        seen: set[date] = set()
        for ref in listed:
            if ref.month_start in wanted:
                refs_by_month[ref.month_start].append(ref)
                seen.add(ref.month_start)
        for m in sorted(wanted - seen):
            report.skipped.append(f"{s.venue} {s.instrument_key} {s.interval} {s.timestamp_type} {m:%Y-%m}")
    for item in report.skipped:
        progress(f"{name}: no files listed for {item}; existing rows kept")
    files_total = sum(len(v) for v in refs_by_month.values())
    progress(f"{name}: {files_total} files listed for {len(series)} series x {len(months)} months")

    # the pid in the name lets the next writer tell a killed run's leftovers from live work
    staging = Path(
        tempfile.mkdtemp(prefix=f"aperiodic-{os.getpid()}-{metric}-", dir=_staging_root(warehouse))
    )

    def write(con: duckdb.DuckDBPyConnection, staged: list[StagedFile]) -> None:
        if staged:
            _write_batch(con, staged, report, reference.then(con, before_commit))
            for staged_file in staged:
                staged_file.path.unlink(missing_ok=True)

    def on_batch(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        progress(
            f"{name}: {done}/{total} months written, {report.rows:,} rows, "
            f"{report.rows / max(elapsed, 1e-9):,.0f} rows/s"
        )

    try:
        fetch_and_write(
            warehouse,
            {m: [partial(_fetch, client, ref, staging) for ref in refs_by_month.get(m, [])] for m in months},
            write,
            workers=workers,
            months_per_transaction=months_per_transaction,
            on_batch=on_batch,
            thread_name=f"aperiodic-{metric}-download",
            ticker=Ticker(name, "files", files_total, progress),
            rows_of=lambda staged: staged.rows,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    progress(f"{name}: loaded {report.rows:,} rows from {report.files} files in {report.seconds:.2f}s")
    return report


def _staging_root(warehouse: Warehouse) -> Path:
    root = warehouse.path.parent / ".staging"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _fetch(client: AperiodicClient, ref: FileRef, staging: Path) -> StagedFile:
    path = staging / ref.file_name
    size = client.download(ref, path)
    start, end = ref.period
    rows = validate_file(path, ref.label, start, end, ref.metric)
    return StagedFile(ref, path, rows, size)


def _write_batch(
    con: duckdb.DuckDBPyConnection,
    staged: list[StagedFile],
    report: LoadReport,
    before_commit: Callable[[], None] | None,
) -> None:
    files = pa.Table.from_pylist(
        [
            {
                "path": str(s.path),
                "venue": s.ref.venue,
                "instrument_key": s.ref.symbol,
                "timestamp_type": s.ref.timestamp_type,
                "interval": s.ref.interval,
                "month": s.ref.month_start,
            }
            for s in staged
        ]
    )
    per_partition: dict[tuple[str, str, str, str, date], list[StagedFile]] = defaultdict(list)
    for s in staged:
        per_partition[
            (s.ref.venue, s.ref.symbol, s.ref.timestamp_type, s.ref.interval, s.ref.month_start)
        ].append(s)
    partitions = pa.Table.from_pylist(
        [
            {
                "vendor": VENDOR,
                "venue": k[0],
                "instrument_key": k[1],
                "timestamp_type": k[2],
                "interval": k[3],
                "month": k[4],
                "rows": sum(s.rows for s in v),
                "files": len(v),
            }
            for k, v in per_partition.items()
        ]
    )
    expected_rows = sum(s.rows for s in staged)
    loaded_at = datetime.now(UTC)
    (metric,) = {s.ref.metric for s in staged}
    targets = [Target(RAW_TABLES[metric], SOURCE.load_sql(metric), PARTITION_KEYS)]
    if metric == PRICE_METRIC:
        targets.append(Target("raw.load_log", read_sql("load/load_log")))
    result = Warehouse.replace_partitions(
        con,
        partitions=partitions.select(["vendor", *PARTITION_KEYS]),
        targets=targets,
        # in time order, so the warehouse stays clustered by time and a month's models read only
        # that month's row groups (DuckDB keeps insertion order; zonemaps then skip the rest)
        params={
            "files": [str(s.path) for s in sorted(staged, key=lambda s: (s.ref.period, s.ref.symbol))],
            "loaded_at": loaded_at,
        },
        registered={"staged_files": files, "staged_partitions": partitions},
        before_commit=before_commit,
        expected_rows=expected_rows,
    )
    report.rows += result.rows
    report.files += len(staged)
    report.bytes += sum(s.size for s in staged)
    report.transactions += 1
    for k, v in per_partition.items():
        key = f"{k[4]:%Y-%m}"
        report.rows_per_month[key] = report.rows_per_month.get(key, 0) + sum(s.rows for s in v)
