"""Aperiodic's part of a load: one listing per series; a series' month, its files, is one unit, validated
in staging. Only prices go to ``raw.load_log`` (``rpt_coverage`` counts them; sparse funding would
never meet it). Columns are read by name (README.md): a column the vendor adds later is dropped with
a warning, not a failure."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from itertools import groupby
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
    # a unit is a series' month, all its files (a running month's daily ones) at once: one file failing
    # keeps the month's rows whole (replacing it with the other days would drop that day's rows)
    units: dict[date, list[tuple[FileRef, ...]]] = {m: [] for m in months}
    skipped: list[str] = []
    failed: list[loader.Failed] = []  # a series whose listing failed: its months are its units
    for s in series:
        try:
            listed = client.list_files(s, months[0], next_month(months[-1]) - timedelta(days=1), metric)
        except Exception as exc:
            what = f"{name} {' '.join(s)} {months[0]:%Y-%m}..{months[-1]:%Y-%m} (listing)"
            failed.append(loader.Failed(what, [s.instrument_key], months, exc))
            continue
        listed = sorted((r for r in listed if r.month_start in units), key=lambda r: r.period)
        for month, found in groupby(listed, key=lambda r: r.month_start):
            units[month].append(tuple(found))
        listed_months = {r.month_start for r in listed}
        skipped += [f"{' '.join(s)} {m:%Y-%m}" for m in months if m not in listed_months]
    for item in skipped:
        progress(f"{name}: no files listed for {item}; existing rows kept")
    files = sum(len(unit) for month in units.values() for unit in month)
    progress(f"{name}: {files} files listed for {len(series)} series x {len(months)} months")
    logged = metric == PRICE_METRIC
    raw = RawTable(
        SOURCE, metric, LOG_KEYS[1:], "series-months", name=name, logged=logged, workers=8, names=_names
    )

    def fetch(unit: tuple[FileRef, ...], count: Count) -> Staged[tuple[FileRef, ...]]:
        read, size = [], 0
        for ref in unit:
            path = Path(staging, ref.file_name)
            size += client.download(ref, path)
            frame, ignored = read_file(path, ref.label, ref.metric)
            if ignored:  # a column the vendor added: the load goes on without it
                log.warning(msg := f"{ref.label}: column(s) {ignored} not in the published layout, ignored")
                progress(msg)
            read.append((ref, path, frame))
        validate_files([(ref.label, *ref.period, frame) for ref, _, frame in read], unit[0].metric)
        count(sum(frame.height for *_, frame in read))
        venue, key, interval, timestamp_type = unit[0].series
        partitions = [
            Partition(venue, key, timestamp_type, interval, r.month_start, f.height, 1) for r, _, f in read
        ]
        # in time order: the lake stays clustered by time, so a month's models read only its row groups
        files = tuple(path for _, path, _ in read)
        return Staged(
            unit, _names(unit)[0], partitions, files=files, position=(unit[0].period, key), bytes=size
        )

    with loader.staging_folder(warehouse, raw) as staging:
        return run(raw, warehouse, units, fetch, skipped=skipped, failed=failed, **options)


def _names(unit: tuple[FileRef, ...]) -> tuple[str, list[str]]:
    """A series' month, as its files are labelled without the day."""
    first = unit[0]
    return first.label.removesuffix(first.when) + f"{first.month_start:%Y-%m}", [first.series.instrument_key]


def read_file(path: Path, label: str, metric: str = PRICE_METRIC) -> tuple[pl.DataFrame, list[str]]:
    """(its rows, columns ignored): a readable file of the metric's layout with finite, plausible values;
    an unpublished column is dropped from the staged file. ``validate_files`` checks the rest."""
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
    if unexpected:
        frame = frame.drop(unexpected)
        frame.write_parquet(path)
    return frame, unexpected


def validate_files(files: Sequence[tuple[str, datetime, datetime, pl.DataFrame]], metric: str) -> None:
    """``(label, start, end, rows)`` of one series' month against the published layout, in one pandera
    call (its cost is per call: 21 ms for a day's 24 rows, so a month of daily files paid it 31 times);
    a failure is found again file by file, to name the file."""
    if len(files) > 1:
        try:
            # each file's rows in its own period (the month's check below would let a day's stray row in)
            if all(f["time"].is_between(start, end, closed="left").all() for _, start, end, f in files):
                frame = pl.concat([f for *_, f in files], how="diagonal_relaxed")
                schema = _schema(frame, metric, files[0][1], files[-1][2])
                validated(schema, frame, files[0][0], FileValidationError)
                return
        except (FileValidationError, pl.exceptions.PolarsError):
            pass  # the file that fails says so below
    for label, start, end, frame in files:
        validated(_schema(frame, metric, start, end), frame, label, FileValidationError)
    if len(files) > 1:  # each file alone passes, together they repeat a time
        raise FileValidationError(
            f"{files[0][0]}: failed validation: a time repeats across the month's files"
        )


def _schema(frame: pl.DataFrame, metric: str, start: datetime, end: datetime) -> pa.DataFrameSchema:
    """[start, end) (naive UTC), over the published columns the frame holds."""
    columns = {"time": period_column(pl.Datetime("us"), start, end)}
    for name in (n for n in frame.columns if n != "time"):
        columns[name] = pa.Column(pl.Float64, checks=_CHECKS.get(name), nullable=name != "funding_rate")
    return pa.DataFrameSchema(columns, strict=True, coerce=True, name=f"aperiodic {metric}")
