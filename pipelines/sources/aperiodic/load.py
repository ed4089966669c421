"""Aperiodic's part of a load: one listing per series, each file validated in staging. Only prices go
to ``raw.load_log`` (``rpt_coverage`` counts them; sparse funding would never meet it). Columns are
read by name (README.md): a column the vendor adds later is dropped with a warning, not a failure."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Unpack

import pandera.polars as pa
import polars as pl

from pipelines.months import next_month
from pipelines.partitions import selected_instruments
from pipelines.sources import loader
from pipelines.sources.aperiodic.client import AperiodicClient, FileRef, Series
from pipelines.sources.aperiodic.source import (
    APERIODIC_METRICS,
    METRIC_COLUMNS,
    METRIC_VENUES,
    PRICE_COLUMNS,
    PRICE_METRIC,
    SOURCE,
    asks_for,
)
from pipelines.sources.loader import LOG_KEYS, Count, LoadReport, Options, Partition, RawTable, Staged, run
from pipelines.sources.source import Loaded, LoadRequest
from pipelines.validation import period_column, validated, value_problem
from pipelines.warehouse.lake import Warehouse

log = logging.getLogger("markhouse.aperiodic")

_MAIN = {"funding": "funding_rate", "open_interest": "open_interest", "basis": "basis"}  # each metric's own
# a file without one fails, naming the file and the columns
REQUIRED_COLUMNS = {PRICE_METRIC: METRIC_COLUMNS[PRICE_METRIC], **{m: ("time", c) for m, c in _MAIN.items()}}
# NaN or +-inf here is a defect of the file (rejected, nothing written)
FINITE_COLUMNS = {PRICE_METRIC: PRICE_COLUMNS, **{m: (c,) for m, c in _MAIN.items()}}
FINITE_COLUMNS["funding"] += ("predicted_funding_rate",)
_CHECKS = {**dict.fromkeys(PRICE_COLUMNS, pa.Check.gt(0)), "open_interest": pa.Check.ge(0)}


class FileValidationError(ValueError):
    """A downloaded file is not a valid file of its metric; the message names the file."""


def load(request: LoadRequest) -> Loaded:
    """One raw asset's run: ``request.table`` is the metric."""
    section, metric, covered = request.section, request.table, METRIC_VENUES[request.table]
    series = []
    for i in selected_instruments(section.instruments, request.instruments, "Aperiodic"):
        if not asks_for(metric, i):
            continue
        if i.venue not in covered:  # a universe naming the metric refused these when it was read
            msg = f"aperiodic {metric}: {i.venue} {i.instrument_key} skipped: the metric covers {', '.join(covered)}"
            log.warning(msg)
            request.progress(msg)
            continue
        for interval in i.intervals or section.intervals:  # its own, else its section's
            series += [Series(i.venue, i.instrument_key, interval, t) for t in section.timestamp_types]
    shown = {"files": "files", "bytes": "bytes", "months_without_files": "skipped"}
    keys, price = [s.instrument_key for s in series], metric == PRICE_METRIC  # others may start later
    return loader.load(request, load_months, series, shown, metric=metric, keys=keys, must_have_rows=price)


def load_months(
    client: AperiodicClient,
    warehouse: Warehouse,
    series: Iterable[Series],
    months: Iterable[date],
    *,
    metric: str = PRICE_METRIC,
    **options: Unpack[Options],
) -> LoadReport:
    """Replace ``months`` of every series' ``metric``; a month with no file listed keeps its rows."""
    if metric not in APERIODIC_METRICS:
        raise ValueError(f"unknown Aperiodic metric {metric!r}; known: {', '.join(APERIODIC_METRICS)}")
    name = "aperiodic" if metric == PRICE_METRIC else f"aperiodic {metric}"
    progress = options.get("progress", log.info)
    months, series = sorted(set(months)), list(series)
    if not months or not series:
        return LoadReport()
    refs: dict[date, list[FileRef]] = {m: [] for m in months}
    skipped: list[str] = []
    failed: list[loader.Failed] = []  # a series whose listing failed: its months are its units
    for s in series:
        try:
            listed = client.list_files(s, months[0], next_month(months[-1]) - timedelta(days=1), metric)
        except Exception as exc:
            what = f"{name} {' '.join(s)} {months[0]:%Y-%m}..{months[-1]:%Y-%m} (listing)"
            failed.append(loader.Failed(what, [s.instrument_key], months, exc))
            continue
        for ref in (found := [ref for ref in listed if ref.month_start in refs]):
            refs[ref.month_start].append(ref)
        skipped += [f"{' '.join(s)} {m:%Y-%m}" for m in sorted(set(months) - {r.month_start for r in found})]
    for item in skipped:
        progress(f"{name}: no files listed for {item}; existing rows kept")
    progress(
        f"{name}: {sum(map(len, refs.values()))} files listed for {len(series)} series x {len(months)} months"
    )
    logged = metric == PRICE_METRIC
    raw = RawTable(SOURCE, metric, LOG_KEYS[1:], "files", name=name, logged=logged, workers=8, names=_names)

    def fetch(ref: FileRef, count: Count) -> Staged[FileRef]:
        path = Path(staging, ref.file_name)
        size = client.download(ref, path)
        rows, ignored = validate_file(path, ref.label, *ref.period, ref.metric)
        count(rows)
        if ignored:  # a column the vendor added: the load goes on without it
            log.warning(msg := f"{ref.label}: column(s) {ignored} not in the published layout, ignored")
            progress(msg)
        venue, key, interval, timestamp_type = ref.series
        partition = Partition(venue, key, timestamp_type, interval, ref.month_start, rows, 1)
        # in time order: the lake stays clustered by time, so a month's models read only its row groups
        return Staged(ref, ref.label, [partition], file=path, position=(ref.period, key), bytes=size)

    with loader.staging_folder(warehouse, raw) as staging:
        return run(raw, warehouse, refs, fetch, skipped=skipped, failed=failed, **options)


def _names(ref: FileRef) -> tuple[str, list[str]]:
    return ref.label, [ref.series.instrument_key]


def validate_file(
    path: Path, label: str, start: datetime, end: datetime, metric: str = PRICE_METRIC
) -> tuple[int, list[str]]:
    """(rows, columns ignored): an unpublished column is dropped from the staged file."""
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt or non-parquet body
        html = path.read_bytes()[:60].lstrip().lower().startswith((b"<!doctype", b"<html"))
        hint = " (looks like an HTML page)" if html else ""
        raise FileValidationError(f"{label}: not a readable parquet file{hint}: {exc}") from None
    unexpected = sorted(set(frame.columns) - set(METRIC_COLUMNS[metric]))
    if missing := sorted(set(REQUIRED_COLUMNS[metric]) - set(frame.columns)):
        raise FileValidationError(
            f"{label}: schema drift: unexpected columns {unexpected or 'none'}, missing {missing}"
        )
    time_dtype = frame.schema["time"]
    if isinstance(time_dtype, pl.Datetime) and time_dtype.time_zone is not None:
        frame = frame.with_columns(pl.col("time").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    # before pandera, whose not-null check counts NaN as null and would hide what is wrong
    if problem := value_problem(frame, FINITE_COLUMNS[metric], "time"):
        raise FileValidationError(f"{label} ({path.name}): {problem}")
    frame = frame.drop(unexpected)
    # [start, end) (naive UTC), over the published columns the file holds
    columns = {"time": period_column(pl.Datetime("us"), start, end)}
    for name in (n for n in frame.columns if n != "time"):
        columns[name] = pa.Column(pl.Float64, checks=_CHECKS.get(name), nullable=name != "funding_rate")
    schema = pa.DataFrameSchema(columns, strict=True, coerce=True, name=f"aperiodic {metric}")
    validated(schema, frame, label, FileValidationError)
    if unexpected:
        frame.write_parquet(path)
    return frame.height, unexpected
