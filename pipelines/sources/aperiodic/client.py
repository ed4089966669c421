"""Aperiodic's file listings and downloads (PROTOCOLS.md §1, README.md here); an expired presigned URL
is listed again once. No ``from __future__ import annotations``: Dagster reads the resource's fields."""

import logging
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, Unpack

from pipelines.http import HttpOptions, VendorClient, VendorHTTPError
from pipelines.months import next_month
from pipelines.paging import SinglePage, paginate
from pipelines.resources import VendorResource
from pipelines.sources.aperiodic.source import PRICE_METRIC

log = logging.getLogger("markhouse.aperiodic")

DEMO_KEY = "DEMO-KEY"
REAL_BASE_URL = "https://aperiodic.io/api/v1"


class Series(NamedTuple):
    venue: str
    instrument_key: str
    interval: str
    timestamp_type: str


class FileRef(NamedTuple):
    series: Series
    year: int
    month: int
    day: int | None
    url: str
    metric: str = PRICE_METRIC

    @property
    def month_start(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def period(self) -> tuple[datetime, datetime]:
        """[start, end) of the rows this file may hold, naive UTC."""
        start = datetime(self.year, self.month, self.day or 1)
        return start, start + timedelta(days=1) if self.day is not None else next_month(start)

    @property
    def when(self) -> str:
        return f"{self.year}-{self.month:02d}" + (f"-{self.day:02d}" if self.day else "")

    @property
    def label(self) -> str:
        """The metric is named unless it is the price metric, whose label predates the others."""
        metric = "" if self.metric == PRICE_METRIC else f"{self.metric} "
        return f"aperiodic {metric}{' '.join(self.series)} {self.when}"

    @property
    def file_name(self) -> str:
        return "__".join((self.metric, *self.series, self.when)).replace(":", "_") + ".parquet"


class AperiodicClient(VendorClient):
    """Without a key, the free preview slice with ``DEMO-KEY``."""

    vendor = "aperiodic"

    def __init__(self, base_url: str, api_key: str | None, **options: Unpack[HttpOptions]):
        super().__init__(base_url, api_key, {"X-API-KEY": api_key or DEMO_KEY}, **options)
        self.preview = not api_key

    def list_files(self, series: Series, start: date, end: date, metric: str = PRICE_METRIC) -> list[FileRef]:
        """Every file of ``metric`` covering [start, end] (end inclusive, as the API takes it)."""
        venue, symbol, interval, timestamp_type = series
        params = {"timestamp": timestamp_type, "interval": interval, "exchange": venue, "symbol": symbol}
        params |= {"start_date": start.isoformat(), "end_date": end.isoformat()}
        url = f"{self.base_url}/data/{'preview/' if self.preview else ''}{metric}"
        (body,) = paginate(self.http, SinglePage(url, params))
        files = body.get("files") if isinstance(body, dict) else None
        if not isinstance(files, list):
            raise VendorHTTPError("aperiodic", f"listing has no 'files' array: {str(body)[:120]!r}")
        refs = []
        for entry in files:
            try:
                day = int(entry["day"]) if entry.get("day") is not None else None
                year, month, url = int(entry["year"]), int(entry["month"]), str(entry["url"])
                refs.append(FileRef(series, year, month, day, url, metric))
            except (KeyError, TypeError, ValueError):
                message = f"malformed file entry in listing: {self.http.redact(str(entry))[:160]}"
                raise VendorHTTPError("aperiodic", message) from None
        return refs

    def download(self, ref: FileRef, dest: Path) -> int:
        """Download ``ref`` to ``dest``; returns the byte count. An expired URL is refreshed once."""
        resp = self.http.get(ref.url, send_headers=False, final_statuses=(403,))
        if resp.status_code == 403:
            log.info("%s: presigned URL refused (expired?), listing the month again", ref.label)
            fresh = self._refresh(ref)
            resp = self.http.get(fresh.url, send_headers=False, final_statuses=(403,))
            if resp.status_code == 403:
                message = f"{ref.label}: presigned URL refused twice (403)"
                raise VendorHTTPError("aperiodic", message, 403, self.http.redact(fresh.url))
        body, expected = resp.content, resp.headers.get("Content-Length")
        if expected is not None and expected.isdigit() and int(expected) != len(body):
            message = f"{ref.label}: body cut short ({len(body)} of {expected} bytes)"
            raise VendorHTTPError("aperiodic", message, resp.status_code)
        dest.write_bytes(body)
        return len(body)

    def _refresh(self, ref: FileRef) -> FileRef:
        start, end = ref.period
        for candidate in self.list_files(
            ref.series, start.date(), (end - timedelta(days=1)).date(), ref.metric
        ):
            if (candidate.year, candidate.month, candidate.day) == (ref.year, ref.month, ref.day):
                return ref._replace(url=candidate.url)
        raise VendorHTTPError("aperiodic", f"{ref.label}: no longer listed when asked for a fresh URL")


class AperiodicResource(VendorResource):
    vendor = "aperiodic"
    workers: int = 8

    def client(self) -> AperiodicClient:
        base_url, api_key, _ = self.endpoint()
        return AperiodicClient(
            base_url or REAL_BASE_URL, api_key, rate_limit_per_second=self.rate_limit_per_second
        )
