"""Aperiodic's part of a load (``pipelines.sources.loader`` does the rest): one listing per series
for the whole range, each file downloaded to staging and validated there. Only the price metric is
logged in ``raw.load_log``: ``rpt_coverage`` counts its rows per interval, which a sparse funding
series would never meet."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Unpack

from pipelines.months import next_month
from pipelines.partitions import selected_instruments
from pipelines.sources.aperiodic.client import AperiodicClient, FileRef, Series
from pipelines.sources.aperiodic.schema import validate_file
from pipelines.sources.aperiodic.source import SOURCE
from pipelines.sources.aperiodic.universe import APERIODIC_METRICS, METRIC_VENUES, PRICE_METRIC, asks_for
from pipelines.sources.loader import (
    Count,
    Failed,
    LoadReport,
    Options,
    Partition,
    Progress,
    RawTable,
    Staged,
    options_of,
    run,
    staging_folder,
)
from pipelines.sources.source import Loaded, LoadRequest
from pipelines.warehouse.lake import Warehouse

log = logging.getLogger("markhouse.aperiodic")


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
        for interval in section.intervals:
            series += [Series(i.venue, i.instrument_key, interval, t) for t in section.timestamp_types]
    client, warehouse = request.resource.client(), request.warehouse
    report = load_months(client, warehouse, series, request.months, metric=metric, **options_of(request))
    keys = [s.instrument_key for s in series]
    # funding and open interest may legitimately start later than prices
    extra = {"files": report.files, "bytes": report.bytes, "months_without_files": report.skipped}
    return Loaded.of(report, keys, must_have_rows=metric == PRICE_METRIC, **extra)


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
    failed: list[Failed] = []  # a series whose listing failed: its months are its units
    for s in series:
        try:
            listed = client.list_files(s, months[0], next_month(months[-1]) - timedelta(days=1), metric)
        except Exception as exc:
            what = f"{name} {' '.join(s)} {months[0]:%Y-%m}..{months[-1]:%Y-%m} (listing)"
            failed.append(Failed(what, [s.instrument_key], months, exc))
            continue
        found = [ref for ref in listed if ref.month_start in refs]
        for ref in found:
            refs[ref.month_start].append(ref)
        skipped += [f"{' '.join(s)} {m:%Y-%m}" for m in sorted(set(months) - {r.month_start for r in found})]
    for item in skipped:
        progress(f"{name}: no files listed for {item}; existing rows kept")
    files = sum(len(v) for v in refs.values())
    progress(f"{name}: {files} files listed for {len(series)} series x {len(months)} months")
    raw: RawTable[FileRef] = RawTable(
        SOURCE,
        metric,
        ("venue", "instrument_key", "timestamp_type", "interval", "month"),
        "files",
        name=name,
        logged=metric == PRICE_METRIC,
        workers=8,
        names=lambda ref: (ref.label, [ref.series.instrument_key]),
    )
    with staging_folder(warehouse, raw) as staging:
        fetch = partial(_fetch, client, staging, progress)
        return run(raw, warehouse, refs, fetch, skipped=skipped, failed=failed, **options)


def _fetch(
    client: AperiodicClient, staging: Path, progress: Progress, ref: FileRef, count: Count
) -> Staged[FileRef]:
    path = staging / ref.file_name
    size = client.download(ref, path)
    start, end = ref.period
    rows, ignored = validate_file(path, ref.label, start, end, ref.metric)
    count(rows)
    if ignored:  # a column the vendor added: the load goes on without it
        log.warning(msg := f"{ref.label}: column(s) {ignored} not in the published layout, ignored")
        progress(msg)
    venue, key, interval, timestamp_type = ref.series
    partition = Partition(venue, key, timestamp_type, interval, ref.month_start, rows, 1)
    # loaded in time order: the lake stays clustered by time, and a month's models read only
    # that month's row groups (DuckDB keeps insertion order; zonemaps then skip the rest)
    return Staged(ref, ref.label, [partition], file=path, position=(ref.period, key), bytes=size)
