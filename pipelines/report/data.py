"""What the report draws, read from the serving copy as plain columns (name -> values), so a chart
draws exactly the rows its query returned."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.status import INTERVAL_SECONDS, INTERVALS_SQL, judgement_time
from pipelines.warehouse.lake import read_sql, registered_tables, used_params
from pipelines.warehouse.serving import open_serving

Columns = dict[str, list[Any]]

DEFAULT_DAYS = 180  # default range: the last 180 days up to the newest data (none before the oldest)
HOURLY_UP_TO_DAYS = 14  # carry is averaged per hour over ranges this short, per day beyond


class ReportInputError(ValueError):
    """An option the marts cannot answer (an unknown instrument, an empty range)."""


@dataclass(frozen=True)
class ReportRange:
    start: date  # first day, UTC
    end: date  # last day, inclusive
    instruments: tuple[str, ...] | None
    interval: str

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def carry_bucket(self) -> str:
        return "hour" if len(self.days) <= HOURLY_UP_TO_DAYS else "day"


@dataclass(frozen=True)
class ReportData:
    range: ReportRange
    published_at: datetime | None
    as_of: datetime  # coverage is judged up to it, as `markhouse status` judges (the running day's end)
    columns: dict[str, Columns]  # chart name -> the rows it draws


def resolve_range(
    con: duckdb.DuckDBPyConnection,
    start: date | None,
    end: date | None,
    instruments: list[str] | None,
    interval: str,
) -> ReportRange:
    """Fill in the defaults from the data and reject what the marts do not hold, naming it."""
    if interval not in INTERVAL_SECONDS:
        raise ReportInputError(f"unknown interval {interval!r}; one of {', '.join(INTERVAL_SECONDS)}")
    if instruments:
        known = {key for (key,) in con.execute("select instrument_key from marts.dim_instrument").fetchall()}
        if unknown := sorted(set(instruments) - known):
            raise ReportInputError(f"not in marts.dim_instrument: {', '.join(unknown)}")
    row = con.execute("select min(ts), max(ts) from marts.fct_price_interval").fetchone()
    oldest, newest = row if row else (None, None)
    if end is None:
        end = newest.astimezone(UTC).date() if newest else datetime.now(UTC).date()
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
        if oldest is not None:
            start = min(end, max(start, oldest.astimezone(UTC).date()))
    if end < start:
        raise ReportInputError(f"end {end} is before start {start}")
    return ReportRange(start, end, tuple(instruments) if instruments else None, interval)


def read_report_data(
    serving_path: Path,
    start: date | None = None,
    end: date | None = None,
    instruments: list[str] | None = None,
    interval: str = "1h",
    as_of: datetime | None = None,
) -> ReportData:
    """``as_of``: default the time `markhouse status` judges at (now, or the emulator's clock)."""
    as_of = as_of or judgement_time()
    with open_serving(serving_path) as con:
        rng = resolve_range(con, start, end, instruments, interval)
        params = {
            "start": datetime.combine(rng.start, time(), UTC),
            "end": datetime.combine(rng.end + timedelta(days=1), time(), UTC),  # exclusive
            "instruments": list(rng.instruments or []) or None,
            "interval": rng.interval,
            "as_of": as_of,
        }

        def rows(name: str, **fill: str) -> pa.Table:
            sql = read_sql(f"report/{name}")
            sql = sql.format(**fill) if fill else sql
            return con.execute(sql, used_params(sql, params)).to_arrow_table()

        # each curve's snapshots to draw, and their instants: they narrow the term structure's view
        snapshots = rows("term_structure_snapshots")
        params["snapshot_ts"] = snapshots["ts"].unique().to_pylist()
        as_of_sql = read_sql("status/coverage_as_of").format(intervals=INTERVALS_SQL)  # as status judges
        with registered_tables(con, {"snapshots": snapshots}):
            tables = {
                "term_structure": rows("term_structure"),
                "carry": rows("carry_over_time", bucket=rng.carry_bucket),
                "constant_maturity": rows("constant_maturity", bucket=rng.carry_bucket),
                "carry_trade": rows("carry_trade", bucket=rng.carry_bucket),
                "mark_last_gap": rows("mark_last_gap"),
                "vendor_divergence": rows("vendor_divergence"),
                "coverage": rows("coverage_by_day", intervals=INTERVALS_SQL, coverage=as_of_sql),
                # each underlying's latest smile, and its at-the-money term structure
                "vol_smile": rows("vol_smile"),
                "vol_term_structure": rows("vol_term_structure"),
            }
        try:
            published = con.execute("select max(published_at) from meta.publication").fetchone()
        except duckdb.CatalogException:  # a serving copy published before meta.publication existed
            published = None
        columns = {name: table.to_pydict() for name, table in tables.items()}
        return ReportData(rng, published[0] if published else None, as_of, columns)
