"""The one loader: a vendor's ``load.py`` declares its ``RawTable``, units and fetch. A batch of months
is one transaction, so a partition holds its old rows or its new ones; a failed unit is reported while
the rest load, unless every unit failed (then the vendor did); an empty answer deletes nothing."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypedDict, TypeVar, Unpack

import duckdb
import pyarrow as pa

from pipelines.http import cancellable
from pipelines.progress import Ticker
from pipelines.reference import Reference, upsert_reference
from pipelines.sources.source import Loaded, LoadRequest, Source
from pipelines.warehouse.lake import Target, Warehouse, read_sql

log = logging.getLogger("markhouse.sources")

T = TypeVar("T")
U = TypeVar("U")
Count = Callable[[int], None]  # rows as they arrive, for the progress line


class Partition(NamedTuple):
    """One partition a unit fills, as ``raw.load_log`` records it (``files``: pages, if paginated)."""

    venue: str
    instrument_key: str
    timestamp_type: str
    interval: str
    month: date
    rows: int
    files: int


LOG_KEYS = ("vendor", *Partition._fields[:5])


class Failed(NamedTuple):
    """A unit that failed while the others loaded: its months keep their rows."""

    label: str  # names the unit, as its Staged would
    instruments: list[str]  # its Atlas keys; none: every one asked for (a coin's)
    months: list[date]
    error: Exception


class Staged(NamedTuple, Generic[U]):
    """One unit fetched and validated: its partitions (none: no rows served) and rows."""

    unit: U
    label: str  # names the unit in messages
    partitions: Sequence[Partition]
    table: pa.Table | None = None  # read by the load SQL as ``staged_rows``
    files: Sequence[Path] = ()  # or as ``$files`` (with ``staged_files``): one per partition, in order
    position: tuple[Any, ...] = ()  # its place in the batch: time order keeps the lake clustered
    pages: int = 0
    bytes: int = 0
    duplicates: int = 0  # repeated rows dropped
    note: str = ""  # why a unit without partitions has none, when it is not "served no rows"


class RawTable(NamedTuple, Generic[U]):
    """Where a vendor's load writes (``raw.<vendor>_<table>``, by its ``load/<table>.sql``)."""

    source: Source
    table: str
    keys: tuple[str, ...]  # the raw table's partition columns
    unit: str  # what one fetch is, in progress lines ("files", "instrument-months")
    name: str = ""  # the prefix of its progress lines; default the vendor's name
    logged: bool = True  # recorded in raw.load_log
    workers: int = 4  # fetches at once, unless a run says
    # the partitions a batch replaces beyond those it fills (a vendor replacing a wider unit)
    also_replace: Callable[[duckdb.DuckDBPyConnection, list[Staged[U]]], pa.Table] | None = None
    # the reference rows a batch writes, from its rows (else the caller's ``reference``)
    reference_of: Callable[[pa.Table], Reference] | None = None
    # a unit's label and instrument keys (none: every one), for a unit that failed
    names: Callable[[U], tuple[str, list[str]]] = lambda unit: (str(unit), [])


@dataclass
class LoadReport:
    rows: int = 0
    transactions: int = 0
    seconds: float = 0.0
    rows_per_month: dict[str, int] = field(default_factory=dict)
    files: int = 0
    pages: int = 0
    bytes: int = 0
    duplicates: int = 0
    skipped: list[str] = field(default_factory=list)  # what wrote nothing: existing rows kept
    failed: list[Failed] = field(default_factory=list)  # what failed while the rest loaded


class Options(TypedDict, total=False):
    workers: int  # fetches at once (default: the raw table's)
    progress: Callable[[str], None]
    before_commit: Callable[[], None] | None  # in each batch's transaction, last (tests meet there)
    reference: Reference  # written with each batch (unless the raw table finds its own)
    origin: str  # "vendor" or "emulator", recorded in raw.load_log; a warehouse holds one per vendor


class MixedOriginError(Exception):
    """A load would put the embedded emulator's data beside a vendor's real data, or the reverse."""


def load(
    request: LoadRequest,
    load_months: Callable[..., LoadReport],
    what: Any,
    shown: Mapping[str, str],
    keys: Sequence[str] = (),
    must_have_rows: bool = True,
    **kwargs: Any,
) -> Loaded:
    """``load_months`` with the request's options; ``shown``: metadata name -> report field."""
    resource, progress = request.resource, request.progress
    origin = "vendor" if resource.endpoint()[2] is None else "emulator"
    options = Options(workers=resource.workers, progress=progress, reference=request.reference, origin=origin)
    report = load_months(resource.client(), request.warehouse, what, request.months, **kwargs, **options)
    extra = {name: getattr(report, f) for name, f in shown.items()}
    lists = {k: extra.pop(k) for k in list(extra) if isinstance(extra[k], list)}  # shown last
    metadata = {"rows": report.rows, **extra, "transactions": report.transactions}
    metadata |= {"seconds": round(report.seconds, 3), "rows_per_month": report.rows_per_month, **lists}
    return Loaded(report.rows, metadata, keys, must_have_rows, report.failed)


def refuse_mixed_origin(con: duckdb.DuckDBPyConnection, source: Source, origin: str) -> None:
    """The demo's emulator rows beside the vendor's real ones would publish invented prices as real
    (a key set for one vendor once loaded the other two from the emulator without a word)."""
    held = con.execute(
        "select any_value(origin) from raw.load_log where vendor = $v and origin <> $o",
        {"v": source.name, "o": origin},
    ).fetchone()
    if held is None or held[0] is None:
        return
    settings = " and ".join(f"{source.name.upper()}_{f}" for f in ("BASE_URL", "API_KEY"))
    raise MixedOriginError(
        f"{source.name}: this warehouse holds {source.label}'s data from the vendor's API, and {settings} are unset, "
        "so this run would add the embedded emulator's data to it; set them, or point MARKHOUSE_WAREHOUSE at another warehouse"
        if held[0] == "vendor"
        else f"{source.name}: this warehouse holds the embedded emulator's {source.label} data (the demo), and "
        f"{settings} point at the vendor, so this run would add real data to it; point MARKHOUSE_WAREHOUSE at a new "
        "warehouse for the vendor's data"
    )


def run(
    raw: RawTable[U],
    warehouse: Warehouse,
    units: Mapping[date, Sequence[U]],
    fetch: Callable[[U, Count], Staged[U]],
    *,
    skipped: Sequence[str] = (),
    failed: Sequence[Failed] = (),
    **options: Unpack[Options],
) -> LoadReport:
    """Replace the months of ``units``; ``skipped``/``failed``: found before (no file, a listing)."""
    progress = options.get("progress", log.info)
    origin = options.get("origin")  # None: a direct call that names none (recorded null, not checked)
    started, name = time.perf_counter(), raw.name or raw.source.name
    report = LoadReport(skipped=list(skipped), failed=list(failed))

    def write(con: duckdb.DuckDBPyConnection, staged: list[Staged[U]]) -> None:
        """One batch in one transaction; ``load_log.sql`` sums a partition that came in several files."""
        for s in staged:
            report.pages, report.bytes = report.pages + s.pages, report.bytes + s.bytes
            report.duplicates += s.duplicates
            if not s.partitions:
                report.skipped.append(f"{s.label}: {s.note}" if s.note else s.label)
                progress(f"{s.label}: {s.note or raw.source.label + ' served no rows'}; existing rows kept")
            elif s.duplicates:
                progress(f"{s.label}: {s.duplicates} repeated row(s) dropped")
        written = sorted((s for s in staged if s.partitions), key=lambda s: s.position)
        if not written:
            return
        files = [str(f) for s in written for f in s.files]  # a raw table's units all have them
        rows = None if files else pa.concat_tables([s.table for s in written if s.table is not None])
        parts = [p for s in written for p in s.partitions]
        partitions = pa.Table.from_pylist(
            [{"vendor": raw.source.name, **p._asdict(), "origin": origin} for p in parts]
        )
        replaced = partitions.select(list(LOG_KEYS))
        if raw.also_replace is not None:
            replaced = pa.concat_tables([replaced, raw.also_replace(con, written).cast(replaced.schema)])
        registered = {"staged_partitions": partitions}
        params: dict[str, Any] = {"loaded_at": datetime.now(UTC)}
        if files:
            registered["staged_files"] = partitions.append_column("path", pa.array(files))
            params["files"] = files
        else:
            registered["staged_rows"] = rows
        reference = options.get("reference", Reference())
        if raw.reference_of is not None and rows is not None:
            reference = raw.reference_of(rows)

        def before_commit() -> None:  # the batch's reference rows in its transaction, then the caller's
            if reference.instruments or reference.names:
                upsert_reference(con, reference.instruments, reference.names)
            if (then := options.get("before_commit")) is not None:
                then()

        targets = [Target(f"raw.{raw.source.name}_{raw.table}", raw.source.load_sql(raw.table), raw.keys)]
        if raw.logged:
            targets.append(Target("raw.load_log", read_sql("load/load_log")))
        report.rows += Warehouse.replace_partitions(
            con,
            partitions=replaced,
            targets=targets,
            params=params,
            registered=registered,
            before_commit=before_commit,
            expected_rows=sum(p.rows for p in parts),
        )
        report.transactions += 1
        report.files += len(files)
        for p in parts:
            month = f"{p.month:%Y-%m}"
            report.rows_per_month[month] = report.rows_per_month.get(month, 0) + p.rows
        for path in files:  # the staging folder stays small over a long backfill
            Path(path).unlink(missing_ok=True)

    total, errors = sum(map(len, units.values())), []
    if total:
        if raw.logged and origin:
            with warehouse.writer() as con:
                refuse_mixed_origin(con, raw.source, origin)
        ticker = Ticker(name, raw.unit, total, progress)

        def on_batch(done: int, months: int) -> None:
            pages = f" in {report.pages} pages" if report.pages else ""
            rate = report.rows / max(time.perf_counter() - started, 1e-9)
            progress(
                f"{name}: {done}/{months} months written, {report.rows:,} rows{pages}, {rate:,.0f} rows/s"
            )

        errors = fetch_and_write(
            warehouse,
            {m: [partial(fetch, u, ticker.rows_arrived) for u in units[m]] for m in units},
            write,
            workers=options.get("workers", raw.workers),
            months_per_transaction=12,
            on_batch=on_batch,
            thread_name=f"{raw.source.name}-{raw.table}-fetch",
            ticker=ticker,
        )
        report.failed += [Failed(*raw.names(units[m][i]), [m], e) for m, i, e in errors]
        report.seconds = time.perf_counter() - started
        progress(f"{name}: loaded {report.rows:,} rows from {total} {raw.unit} in {report.seconds:.2f}s")
    if report.failed and total == len(errors) and not report.skipped:
        raise report.failed[0].error  # nothing but failures: the vendor failed (a key, the host), not a unit
    return report


def staging_folder(warehouse: Warehouse, raw: RawTable[Any]) -> tempfile.TemporaryDirectory[str]:
    """Downloads beside the catalog, named with the pid (see ``remove_stale_temporaries``)."""
    root = warehouse.path.parent / ".staging"
    root.mkdir(parents=True, exist_ok=True)
    prefix = f"{raw.source.name}-{os.getpid()}-{raw.table}-"
    return tempfile.TemporaryDirectory(prefix=prefix, dir=root, ignore_cleanup_errors=True)


def fetch_and_write(
    warehouse: Warehouse,
    jobs: Mapping[date, Sequence[Callable[[], T]]],
    write_batch: Callable[[duckdb.DuckDBPyConnection, list[T]], None],
    *,
    workers: int,
    months_per_transaction: int,
    on_batch: Callable[[int, int], None],
    thread_name: str = "fetch",
    ticker: Ticker | None = None,
) -> list[tuple[date, int, Exception]]:
    """A failed job is returned (month, index, error); an interrupt or a failed write stops it all."""
    months = sorted(jobs)
    ticker = ticker or Ticker(thread_name, "jobs", sum(map(len, jobs.values())), lambda _: None)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name)
    cancel = threading.Event()

    def run_job(job: Callable[[], T]) -> T:
        try:
            with cancellable(cancel):
                return job()
        except BaseException as error:
            if not isinstance(error, Exception):
                cancel.set()  # an interrupt: the other fetches stop at their next request
            raise
        finally:
            ticker.unit_done(0)  # its rows were counted as they arrived

    failed: list[tuple[date, int, Exception]] = []
    try:
        futures = {m: [pool.submit(run_job, job) for job in jobs[m]] for m in months}
        with warehouse.writer() as con:  # the run's hold when it has one (pipelines.warehouse.concurrency)
            for i in range(0, len(months), months_per_transaction):
                batch = months[i : i + months_per_transaction]
                waiting = [f for m in batch for f in futures[m]]
                while wait(waiting, timeout=ticker.every)[1]:
                    ticker.tick()
                results = []
                for month in batch:
                    for index, future in enumerate(futures[month]):
                        if (error := future.exception()) is None:
                            results.append(future.result())
                        elif not isinstance(error, Exception):
                            raise error
                        else:
                            failed.append((month, index, error))
                write_batch(con, results)
                done = i + len(batch)
                on_batch(done, len(months))
                ticker.months_done(done, len(months))
    except BaseException:
        cancel.set()  # a failure or an interrupt: the fetches still running stop at their next request
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return failed
