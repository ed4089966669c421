"""Kaiko's part of a load: one ``next_url`` chain per instrument-interval-month; a row repeated at a
page boundary is dropped, two different rows for one timestamp fail."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import partial
from typing import NamedTuple, Unpack

import pandera.polars as pa
import polars as pl
import pyarrow

from pipelines.months import month_bounds
from pipelines.partitions import selected_instruments
from pipelines.sources import loader
from pipelines.sources.kaiko.client import PRICES, KaikoClient
from pipelines.sources.kaiko.source import SOURCE, KaikoCode, expiry_of
from pipelines.sources.loader import Count, LoadReport, Options, Partition, RawTable, Staged, run
from pipelines.sources.source import Loaded, LoadRequest
from pipelines.symbology import parse_symbol
from pipelines.validation import period_column, validated
from pipelines.warehouse.lake import Warehouse


class Series(NamedTuple):
    venue: str
    instrument_key: str
    code: KaikoCode
    interval: str


Unit = tuple[Series, date]


class MonthValidationError(ValueError):
    """An instrument-month that is not valid Kaiko price data; the message names it."""


def names(unit: Unit) -> tuple[str, list[str]]:
    series, month = unit
    return f"kaiko {series.code} {series.interval} {month:%Y-%m}", [series.instrument_key]


KEYS = ("venue", "instrument_key", "interval", "month")
RAW: RawTable[Unit] = RawTable(SOURCE, "derivative_price", KEYS, "instrument-months", names=names)


def load(request: LoadRequest) -> Loaded:
    series = [
        Series(i.venue, i.instrument_key, request.section.code(i), interval)
        for i in selected_instruments(request.section.instruments, request.instruments, "Kaiko")
        for interval in i.intervals or request.section.intervals  # its own, else its section's
    ]
    shown = dict(pages="pages", bytes="bytes", duplicates_dropped="duplicates", months_without_rows="skipped")
    return loader.load(request, load_months, series, shown, keys=[s.instrument_key for s in series])


def load_months(
    client: KaikoClient,
    warehouse: Warehouse,
    series: Iterable[Series],
    months: Iterable[date],
    **options: Unpack[Options],
) -> LoadReport:
    months = sorted(set(months))
    units: dict[date, list[Unit]] = {m: [] for m in months}
    expired: list[str] = []  # a month from the contract's expiry on has nothing to ask for
    for s in series:
        expiry = expiry_of(s.code.exchange, parse_symbol(s.instrument_key))
        for m in months:
            if expiry is not None and month_bounds(m)[0] >= expiry:
                expired.append(f"kaiko {s.code} {s.interval} {m:%Y-%m}: expired {expiry:%Y-%m-%d %H:%M} UTC")
            else:
                units[m].append((s, m))
    if expired and "progress" in options:
        more = f" (and {len(expired) - 1} more)" if expired[1:] else ""
        options["progress"](f"{expired[0]}, nothing expected{more}")
    return run(RAW, warehouse, units, partial(fetch_month, client), skipped=expired, **options)


def fetch_month(client: KaikoClient, unit: Unit, count: Count) -> Staged[Unit]:
    series, month = unit
    (start, end), label, code, interval = month_bounds(month), names(unit)[0], series.code, series.interval
    fetched = client.fetch(code, interval, start, end, count)
    rows, duplicates = validate_month(fetched.rows, label, start, end)
    skip = partial(Staged, unit, label, [], pages=fetched.pages, bytes=fetched.bytes)
    if not fetched.entitled(start, end):  # not missing data: the key may not see this month
        lo, hi = (
            f"{datetime.fromtimestamp(t / 1000, UTC):%Y-%m-%d %H:%M}" if t is not None else "open"
            for t in fetched.access
        )
        return skip(note=f"not entitled: the key's access_range is {lo} .. {hi}")
    n = rows.num_rows
    expiry = expiry_of(code.exchange, parse_symbol(series.instrument_key))
    if not n and expiry is not None and (first := client.first_after(code, interval, end, expiry)):
        return skip(
            note=f"not yet listed: its first price is at {first:%Y-%m-%d %H:%M} UTC, nothing expected"
        )
    for column, value in zip(KEYS, (series.venue, series.instrument_key, interval, month), strict=True):
        rows = rows.append_column(column, pyarrow.repeat(value, n))
    parts = [Partition(series.venue, series.instrument_key, "exchange", interval, month, n, fetched.pages)]
    parts = parts if n else []
    return Staged(unit, label, parts, rows, pages=fetched.pages, bytes=fetched.bytes, duplicates=duplicates)


def validate_month(
    rows: pyarrow.Table, label: str, start: datetime, end: datetime
) -> tuple[pyarrow.Table, int]:
    """(rows de-duplicated and sorted by ts, duplicates dropped), validated."""
    frame = pl.DataFrame(rows)
    unique = frame.unique(maintain_order=False).sort("ts")
    columns = {"ts": period_column(pl.Datetime("ms", "UTC"), start, end)}
    columns |= {name: pa.Column(pl.Float64, checks=pa.Check.gt(0), nullable=True) for name in PRICES}
    schema = pa.DataFrameSchema(columns, strict=True, name="kaiko derivatives.v2/price")
    validated(schema, unique, label, MonthValidationError)
    return unique.to_arrow(), frame.height - unique.height
