"""CayøLargo ``/v1/marketdata/futures``: one coin's snapshots, paged by time window. The vendor doc
names neither host, auth header nor envelope, so they are settings (README.md here)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.http import HttpClient, RetryPolicy, VendorHTTPError
from pipelines.paging import TimeWindowPaginator, paginate

log = logging.getLogger("markhouse.cayolargo")

REAL_BASE_URL = "https://api.cayolargo.com"
"""Assumed production root (the doc shows only the path); override with CAYOLARGO_BASE_URL."""
FUTURES_PATH = "/v1/marketdata/futures"
DEFAULT_AUTH_HEADER = "X-API-Key"
MAX_LIMIT = 5000
"""The vendor's maximum page size (a larger ``limit`` is answered 400)."""
ENVELOPE_KEYS = ("data", "rows", "result", "results")
"""Where ``envelope="auto"`` looks for the rows in an object answer."""


def iso_utc(value: datetime) -> str:
    """``2026-03-01T00:00:00Z``: the form the vendor doc shows for ``from``/``to``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Page:
    """The new rows of one answer (rows already received at the boundary removed)."""

    number: int
    window_from: str  # the ``from`` this page was asked with
    rows: list[dict[str, Any]]


class CayoLargoClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        auth_header: str = DEFAULT_AUTH_HEADER,
        auth_prefix: str = "",
        envelope: str = "auto",
        page_limit: int = MAX_LIMIT,
        retry: RetryPolicy | None = None,
        rate_limit_per_second: float | None = None,
    ):
        if not 1 <= page_limit <= MAX_LIMIT:
            raise ValueError(f"page_limit must be 1..{MAX_LIMIT}, got {page_limit}")
        self.base_url = base_url.rstrip("/")
        self.envelope = envelope
        self.page_limit = page_limit
        headers = {auth_header: f"{auth_prefix}{api_key}"} if api_key else {}
        self.http = HttpClient(
            "cayolargo",
            headers=headers,
            retry=retry or RetryPolicy(),
            rate_limit_per_second=rate_limit_per_second,
            secrets=(api_key,) if api_key else (),
        )

    @property
    def futures_url(self) -> str:
        return f"{self.base_url}{FUTURES_PATH}"

    def rows_of(self, body: Any) -> list[dict[str, Any]]:
        rows: Any = None
        if self.envelope in ("auto", "list") and isinstance(body, list):
            rows = body
        elif self.envelope == "auto" and isinstance(body, dict):
            rows = next((body[k] for k in ENVELOPE_KEYS if isinstance(body.get(k), list)), None)
        elif self.envelope not in ("auto", "list") and isinstance(body, dict):
            rows = body.get(self.envelope)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows[:1]):
            want = {"auto": "a JSON list or an object with a rows list", "list": "a JSON list"}.get(
                self.envelope, f"an object with a {self.envelope!r} list"
            )
            raise VendorHTTPError("cayolargo", f"expected {want}, got {self.http.redact(str(body))[:160]!r}")
        return rows

    def pages(
        self, coin: str, start: datetime, end: datetime, instrument_id: str | None = None
    ) -> Iterator[Page]:
        """Rows with ``start <= timestamp < end``, none twice. ``to`` is ``end`` minus one second,
        so inclusive and exclusive ``to`` give the same answer (snapshots are 10 minutes apart)."""
        params: dict[str, Any] = {
            "coin": coin,
            "from": iso_utc(start),
            "to": iso_utc(end - timedelta(seconds=1)),
        }
        if instrument_id:
            params["instrument_id"] = instrument_id
        paginator = TimeWindowPaginator(
            self.futures_url,
            params,
            limit=self.page_limit,
            max_limit=MAX_LIMIT,
            rows=self.rows_of,
            timestamp=_timestamp,
            key=lambda row: str(row.get("instrument_id")),
        )
        window_from = params["from"]
        for number, body in enumerate(paginate(self.http, paginator), start=1):
            rows = self.rows_of(body)
            yield Page(number, window_from, paginator.fresh(body))
            if rows:
                window_from = _timestamp(rows[-1])


def _timestamp(row: Any) -> str:
    value = row.get("timestamp") if isinstance(row, dict) else None
    if not isinstance(value, str):
        raise VendorHTTPError("cayolargo", f"row without a 'timestamp' string: {str(row)[:160]!r}")
    return value
