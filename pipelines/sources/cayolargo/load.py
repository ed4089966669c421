"""Load CayøLargo months into the warehouse: page each coin-month, validate, replace atomically.

Shape of a run: one time-window walk per (coin, month) (or per (instrument, month) when the run
is limited to some instruments), run by a bounded thread pool; every page validated as it arrives
(a bad page stops the walk before the next request); months written in batches, each batch one
transaction that deletes the months' rows, inserts the new ones, logs them in raw.load_log and
upserts the instruments met in the data into ref.instrument / ref.vendor_instrument (the exact
expiry and contract size the vendor sent; every source writes its reference rows with its
batches, see pipelines/reference.py). A coin-month is replaced whole, instruments the vendor
no longer serves in it included; a coin-month for which the vendor serves no rows keeps its
existing rows (like a month for which Aperiodic lists no files).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import partial

import duckdb
import polars as pl
import pyarrow as pa

from pipelines.months import month_bounds
from pipelines.progress import Ticker
from pipelines.reference import Reference, VendorName
from pipelines.sources.batches import fetch_and_write
from pipelines.sources.cayolargo.client import CayoLargoClient
from pipelines.sources.cayolargo.mapping import VENDOR, MappingError, from_deribit, to_deribit
from pipelines.sources.cayolargo.schema import ROW_SCHEMA, PageValidationError, validate_page
from pipelines.sources.cayolargo.source import SOURCE
from pipelines.storage import Target, Warehouse, read_sql
from pipelines.universe import UniverseInstrument

log = logging.getLogger("markhouse.cayolargo")

RAW_TABLE = "raw.cayolargo_futures"
RAW_KEYS = ("venue", "instrument_key", "month")
TIMESTAMP_TYPE = "exchange"
INTERVAL = "10m"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Walk:
    """One time-window walk: a coin (all its instruments, or one) over one month."""

    coin: str
    month: date
    instrument_id: str | None = None

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return month_bounds(self.month)

    @property
    def label(self) -> str:
        what = self.coin if self.instrument_id is None else f"{self.coin} {self.instrument_id}"
        return f"cayolargo {what} {self.month:%Y-%m}"


@dataclass(frozen=True)
class Fetched:
    walk: Walk
    rows: pa.Table  # ROW_SCHEMA + month
    pages: int


@dataclass
class LoadReport:
    months: list[date]
    rows: int = 0
    pages: int = 0
    transactions: int = 0
    rows_per_month: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def plan_walks(coins: Sequence[str], months: Iterable[date], instruments: Sequence[str] = ()) -> list[Walk]:
    """Walks for every coin (or only the given Atlas keys, which must belong to the coins)."""
    months = sorted(set(months))
    if not instruments:
        return [Walk(c, m) for m in months for c in coins]
    walks: list[Walk] = []
    for key in instruments:
        deribit = to_deribit(key)
        if deribit.coin not in coins:
            raise MappingError(
                f"{key!r}: coin {deribit.coin} is not in the CayøLargo universe ({', '.join(coins)})"
            )
        walks += [Walk(deribit.coin, m, deribit.instrument_id) for m in months]
    return walks


def fetch(client: CayoLargoClient, walk: Walk) -> Fetched:
    """Every row of one walk, validated page by page; raises on the first bad page."""
    start, end = walk.bounds
    parts: list[pa.Table] = []
    pages = 0
    for page in client.pages(walk.coin, start, end, walk.instrument_id):
        pages += 1
        label = f"{walk.label} page {page.number} (from={page.window_from})"
        window_from = datetime.fromisoformat(page.window_from.replace("Z", "+00:00"))
        parts.append(validate_page(page.rows, label, walk.coin, window_from))
    table = pa.concat_tables(parts) if parts else ROW_SCHEMA.empty_table()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    frame = frame.filter(pl.col("ts") < end)  # a vendor treating `to` loosely
    dup = frame.select("ts", "instrument_id").is_duplicated()
    if dup.any():
        row = frame.filter(dup).row(0, named=True)
        raise PageValidationError(
            f"{walk.label}: {row['instrument_id']} at {row['ts']:%Y-%m-%d %H:%M} arrived twice across pages"
        )
    rows = frame.to_arrow().cast(ROW_SCHEMA)
    rows = rows.append_column("month", pa.repeat(pa.scalar(walk.month, pa.date32()), rows.num_rows))
    return Fetched(walk, rows, pages)


def load_months(
    client: CayoLargoClient,
    warehouse: Warehouse,
    coins: Sequence[str],
    months: Iterable[date],
    *,
    instruments: Sequence[str] = (),
    workers: int = 4,
    months_per_transaction: int = 12,
    progress: Progress = log.info,
    before_commit: Callable[[], None] | None = None,
) -> LoadReport:
    """Replace ``months`` of every coin (or only ``instruments``, Atlas keys) with what CayøLargo
    serves now; raises on the first bad page or final HTTP error (months already committed stay,
    the failing batch changes nothing)."""
    started = time.perf_counter()
    months = sorted(set(months))
    report = LoadReport(months)
    walks = plan_walks(coins, months, instruments)
    if not walks:
        return report
    progress(f"cayolargo: {len(walks)} time-window walks for {len(coins)} coins x {len(months)} months")

    def write(con: duckdb.DuckDBPyConnection, fetched: list[Fetched]) -> None:
        for item in fetched:
            report.pages += item.pages
            if item.rows.num_rows == 0:
                report.skipped.append(item.walk.label)
                progress(f"{item.walk.label}: no rows served; existing rows kept")
        loaded = [f for f in fetched if f.rows.num_rows]
        if loaded:
            _write_batch(con, loaded, report, before_commit)

    def on_batch(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        progress(
            f"cayolargo: {done}/{total} months written, {report.rows:,} rows, "
            f"{report.rows / max(elapsed, 1e-9):,.0f} rows/s"
        )

    jobs: dict[date, list[Callable[[], Fetched]]] = {m: [] for m in months}
    for w in walks:
        jobs[w.month].append(partial(fetch, client, w))
    fetch_and_write(
        warehouse,
        jobs,
        write,
        workers=workers,
        months_per_transaction=months_per_transaction,
        on_batch=on_batch,
        thread_name="cayolargo-page",
        ticker=Ticker("cayolargo", "coin-months", len(walks), progress),
        rows_of=lambda fetched: fetched.rows.num_rows,
    )
    report.seconds = time.perf_counter() - started
    return report


def _write_batch(
    con: duckdb.DuckDBPyConnection,
    fetched: list[Fetched],
    report: LoadReport,
    before_commit: Callable[[], None] | None,
) -> None:
    rows = pa.concat_tables([f.rows for f in fetched])
    frame = pl.from_arrow(rows)
    assert isinstance(frame, pl.DataFrame)
    pages = (
        pl.DataFrame(
            {
                "coin": [f.walk.coin for f in fetched],
                "month": [f.walk.month for f in fetched],
                "files": [f.pages for f in fetched],
            }
        )
        .group_by("coin", "month")
        .agg(pl.col("files").sum())
    )
    loaded = (
        frame.group_by("coin", "venue", "instrument_key", "month")
        .agg(pl.len().alias("rows"))
        .join(pages, on=["coin", "month"], how="left")
        .with_columns(
            pl.lit(VENDOR).alias("vendor"),
            pl.lit(TIMESTAMP_TYPE).alias("timestamp_type"),
            pl.lit(INTERVAL).alias("interval"),
            pl.col("files").cast(pl.Int32),
            pl.col("rows").cast(pl.Int64),
        )
    )
    keys = ["vendor", "venue", "instrument_key", "timestamp_type", "interval", "month"]
    staged_partitions = loaded.select([*keys, "rows", "files"]).to_arrow()
    partitions = loaded.select(keys)
    # A whole coin-month is replaced: instruments it held before but the vendor no longer serves go too.
    whole = {(f.walk.coin, f.walk.month) for f in fetched if f.walk.instrument_id is None}
    if whole:
        con.register("walked", pa.table({"coin": [c for c, _ in whole], "month": [m for _, m in whole]}))
        try:
            stale = con.execute(
                f"select distinct '{VENDOR}' as vendor, r.venue, r.instrument_key, "
                f"'{TIMESTAMP_TYPE}' as timestamp_type, '{INTERVAL}' as interval, r.month "
                f"from {RAW_TABLE} r semi join walked w using (coin, month)"
            ).pl()
        finally:
            con.unregister("walked")
        partitions = pl.concat([partitions, stale.cast(partitions.schema)]).unique()
    expected_rows = rows.num_rows
    result = Warehouse.replace_partitions(
        con,
        partitions=partitions.to_arrow(),
        targets=[
            Target(RAW_TABLE, SOURCE.load_sql("futures"), RAW_KEYS),
            Target("raw.load_log", read_sql("load/load_log")),
        ],
        params={"loaded_at": datetime.now(UTC)},
        registered={"staged_rows": rows, "staged_partitions": staged_partitions},
        before_commit=Reference(*_reference(frame)).then(con, before_commit),
        expected_rows=expected_rows,
    )
    report.rows += result.rows
    report.transactions += 1
    for month, n in loaded.group_by("month").agg(pl.col("rows").sum()).iter_rows():
        key = f"{month:%Y-%m}"
        report.rows_per_month[key] = report.rows_per_month.get(key, 0) + int(n)


def _reference(frame: pl.DataFrame) -> tuple[list[UniverseInstrument], list[VendorName]]:
    """Instruments met in the data, with the vendor's exact expiry and contract size (one per key)."""
    per_key = frame.group_by("instrument_key").agg(
        pl.col("venue").first(),
        pl.col("instrument_id").first(),
        pl.col("contract_type").first(),
        pl.col("expiration_timestamp").sort_by("ts").last(),
        pl.col("contract_size").sort_by("ts").last(),
    )
    instruments: list[UniverseInstrument] = []
    names: list[VendorName] = []
    for row in per_key.sort("instrument_key").iter_rows(named=True):
        deribit = from_deribit(row["instrument_id"])
        inst = deribit.instrument
        if inst.kind == "future":  # the exact expiry (Deribit: 08:00 UTC), not the key's midnight
            inst = replace(inst, expiry=row["expiration_timestamp"])
        instruments.append(
            UniverseInstrument(row["venue"], inst, row["contract_size"], deribit.funding_interval_hours)
        )
        names.append(
            VendorName(
                VENDOR,
                row["venue"],
                row["contract_type"],
                row["instrument_id"],
                row["venue"],
                inst.instrument_key,
            )
        )
    return instruments, names
