"""CayøLargo ``/v1/marketdata/futures``, paged by time window; host, auth and envelope are settings.
No ``from __future__ import annotations``: Dagster reads the resource's fields."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Unpack

from pipelines.http import HttpOptions, VendorClient, VendorHTTPError
from pipelines.paging import TimeWindowPaginator, paginate
from pipelines.resources import VendorResource

REAL_BASE_URL = "https://api.cayolargo.com"  # assumed (the doc shows only the path): CAYOLARGO_BASE_URL
FUTURES_PATH = "/v1/marketdata/futures"
DEFAULT_AUTH_HEADER = "X-API-Key"
MAX_LIMIT = 5000  # the vendor's maximum page size (a larger ``limit`` is answered 400)
ENVELOPE_KEYS = ("data", "rows", "result", "results")  # where ``envelope="auto"`` looks in an object


def iso_utc(value: datetime) -> str:
    """``2026-03-01T00:00:00Z``: the form the vendor doc shows for ``from``/``to``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Page(NamedTuple):
    """The new rows of one answer (rows already received at the boundary removed)."""

    number: int
    window_from: str  # the ``from`` this page was asked with
    rows: list[dict[str, Any]]


class CayoLargoClient(VendorClient):
    vendor = "cayolargo"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        auth_header: str = DEFAULT_AUTH_HEADER,
        auth_prefix: str = "",
        envelope: str = "auto",
        page_limit: int = MAX_LIMIT,
        **options: Unpack[HttpOptions],
    ):
        if not 1 <= page_limit <= MAX_LIMIT:
            raise ValueError(f"page_limit must be 1..{MAX_LIMIT}, got {page_limit}")
        headers = {auth_header: f"{auth_prefix}{api_key}"} if api_key else {}
        super().__init__(base_url, api_key, headers, **options)
        self.envelope, self.page_limit = envelope, page_limit

    def rows_of(self, body: Any) -> list[dict[str, Any]]:
        rows: Any = None
        if self.envelope in ("auto", "list") and isinstance(body, list):
            rows = body
        elif self.envelope == "auto" and isinstance(body, dict):
            rows = next((body[k] for k in ENVELOPE_KEYS if isinstance(body.get(k), list)), None)
        elif self.envelope not in ("auto", "list") and isinstance(body, dict):
            rows = body.get(self.envelope)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows[:1]):
            wants = {"auto": "a JSON list or an object with a rows list", "list": "a JSON list"}
            want = wants.get(self.envelope, f"an object with a {self.envelope!r} list")
            raise VendorHTTPError("cayolargo", f"expected {want}, got {self.http.redact(str(body))[:160]!r}")
        return rows

    def pages(
        self, coin: str, start: datetime, end: datetime, instrument_id: str | None = None
    ) -> Iterator[Page]:
        """Rows of [start, end), none twice; ``to`` = end - 1 s, the same whether ``to`` is inclusive."""
        params = {"coin": coin, "from": iso_utc(start), "to": iso_utc(end - timedelta(seconds=1))}
        if instrument_id:
            params["instrument_id"] = instrument_id
        paginator = TimeWindowPaginator(
            f"{self.base_url}{FUTURES_PATH}",
            params,
            limit=self.page_limit,
            max_limit=MAX_LIMIT,
            rows=self.rows_of,
            timestamp=_timestamp,
            key=lambda row: str(row.get("instrument_id")),
        )
        # ``paginator.params`` moves on after a page is used: its ``from`` is still this page's
        for number, body in enumerate(paginate(self.http, paginator), start=1):
            yield Page(number, paginator.params["from"], paginator.fresh(body))


def _timestamp(row: Any) -> str:
    value = row.get("timestamp") if isinstance(row, dict) else None
    if not isinstance(value, str):
        raise VendorHTTPError("cayolargo", f"row without a 'timestamp' string: {str(row)[:160]!r}")
    return value


class CayoLargoResource(VendorResource):
    """The vendor doc leaves auth header and envelope open (README.md); a base URL alone: no auth."""

    vendor = "cayolargo"
    env_fields = ("base_url", "api_key", "auth_header", "envelope")

    auth_header: str | None = None
    auth_prefix: str = ""
    envelope: str | None = None
    page_limit: int = MAX_LIMIT

    def client(self) -> CayoLargoClient:
        base_url, api_key, emulator = self.endpoint()
        auth = self if emulator is None else emulator.handler("cayolargo")  # the emulator's own auth
        return CayoLargoClient(
            base_url or REAL_BASE_URL,
            api_key,
            auth_header=auth.auth_header or DEFAULT_AUTH_HEADER,
            auth_prefix=auth.auth_prefix,
            envelope=self.envelope or "auto",
            page_limit=self.page_limit,
            rate_limit_per_second=self.rate_limit_per_second,
        )
