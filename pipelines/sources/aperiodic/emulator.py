"""Aperiodic's wire protocol (vendor-docs/PROTOCOLS.md §1), served from the shipped sample.

API (``/api/v1``, header ``X-API-KEY``):

* ``GET /api/v1/data/{metric}`` -> ``{"files": [{"year", "month", ["day",] "url"}]}``, metric
  ``derivative_price``, ``funding``, ``open_interest`` or ``basis`` (each in its catalog layout, for
  the exchanges its catalog page lists: another one is a 400)
* ``GET /api/v1/data/preview/{metric}`` -> the same, limited to the preview slice
  (``DEMO-KEY`` or any valid key)
* ``GET /api/v1/metadata/symbols?exchange=...`` -> ``{"symbols": [...], "exchange": ...}``

Files (no API key; S3-style presigned, valid 300 s by the emulator clock):
``/files/derivative-metrics/{exchange}/{interval}/{timestamp}/{symbol}/{YYYY-MM|YYYY-MM-DD}.parquet``
(derivative_price), ``/files/derivative-metrics/{metric}/{exchange}/...`` (the other metrics)
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.emulator import market_data as md
from pipelines.emulator.disk_cache import on_disk
from pipelines.emulator.faults import VALUE_FAULTS
from pipelines.emulator.server import Request, Response, json_error, json_response, retry_after_header
from pipelines.sources.aperiodic.source import METRIC_VENUES

if TYPE_CHECKING:
    from pipelines.emulator.server import Emulator

API_PREFIX = "/api/v1/"
PRICE_METRIC = "derivative_price"
METRICS: tuple[str, ...] = tuple(md.METRIC_TABLES)
LISTING_PREFIX = "/api/v1/data/"
PREVIEW_LISTING_PREFIX = "/api/v1/data/preview/"
LISTING_PATH = LISTING_PREFIX + PRICE_METRIC
PREVIEW_LISTING_PATH = PREVIEW_LISTING_PREFIX + PRICE_METRIC
SYMBOLS_PATH = "/api/v1/metadata/symbols"
FILE_PREFIX = "/files/derivative-metrics/"

PREVIEW_KEY = "DEMO-KEY"
PREVIEW_EXCHANGE = "binance-futures"
PREVIEW_SYMBOLS: frozenset[str] = frozenset(md.SYMBOLS["binance-futures"])
PREVIEW_INTERVALS: frozenset[str] = frozenset({"1h", "1d"})
PREVIEW_MONTHS: frozenset[tuple[int, int]] = frozenset({(2025, 5), (2025, 6)})
"""The curated preview slice: BTC and ETH perps on binance-futures, 1h and 1d, May-June 2025."""

URL_EXPIRES = 300
PLAN_INTERVALS: frozenset[str] = frozenset({"15s", "30s"})
"""Intervals the client knows but the emulated plan does not include (answered 403)."""

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?\.parquet$")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_ACCESS_KEY = "EMULATORACCESSKEY"


@dataclass(frozen=True, order=True)
class FilePeriod:
    """One stored object: a whole month, or (day set) a whole day."""

    year: int
    month: int
    day: int | None = None

    @property
    def label(self) -> str:
        base = f"{self.year:04d}-{self.month:02d}"
        return base if self.day is None else f"{base}-{self.day:02d}"

    def bounds(self) -> tuple[date, date]:
        """[start, end) dates covered."""
        if self.day is not None:
            start = date(self.year, self.month, self.day)
            return start, start + timedelta(days=1)
        last = calendar.monthrange(self.year, self.month)[1]
        return date(self.year, self.month, 1), date(self.year, self.month, last) + timedelta(days=1)


def list_periods(
    exchange: str,
    symbol: str,
    start_date: date,
    end_date: date,
    today: date,
) -> list[FilePeriod]:
    """The objects a listing returns for an inclusive date range, chronologically.

    Months wholly before ``today``'s month come as monthly files; the ``today`` month as one daily
    file per complete day (day < today). Periods outside the symbol's data are not listed.
    """
    first, last = md.data_bounds(exchange, symbol)
    lo = max(start_date, first.date())
    hi = min(end_date, last.date(), today - timedelta(days=1))
    periods: list[FilePeriod] = []
    y, m = lo.year, lo.month
    while (y, m) <= (hi.year, hi.month):
        if (y, m) < (today.year, today.month):
            periods.append(FilePeriod(y, m))
        else:  # the today month: complete days only
            d = lo if (lo.year, lo.month) == (y, m) else date(y, m, 1)
            while d <= hi:
                periods.append(FilePeriod(y, m, d.day))
                d += timedelta(days=1)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return periods


def unordered(periods: list[FilePeriod]) -> list[FilePeriod]:
    """Deterministic but never chronological for 2+ files: odd positions, then even ones.

    The vendor says not to rely on the order; this makes a client that does fail every time.
    """
    return periods[1::2] + periods[0::2]


def period_table(
    exchange: str, symbol: str, interval: str, timestamp: str, period: FilePeriod, metric: str = PRICE_METRIC
) -> pa.Table:
    """The rows of one stored object (the whole month or day)."""
    start, end = period.bounds()
    return md.METRIC_TABLES[metric](exchange, symbol, interval, timestamp, start, end)


@lru_cache(maxsize=64)
@on_disk
def _file_bytes(
    metric: str, exchange: str, symbol: str, interval: str, timestamp: str, period: FilePeriod, drift: bool
) -> bytes:
    table = period_table(exchange, symbol, interval, timestamp, period, metric)
    if drift:
        table = (
            _drifted(table, md.native_symbol(exchange, symbol))
            if metric == PRICE_METRIC
            else _drifted_metric(table, metric)
        )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _drifted(table: pa.Table, native: str) -> pa.Table:
    """The schema-drift defect: one column gone, an unexpected one added."""
    series = md.hourly_series(native)
    times = table["time"].cast(pa.int64()).to_pylist()
    funding = [series.premium(t // 1000) + md.INTEREST_RATE for t in times]
    table = table.drop_columns(["index_last_pct_change_ratio"])
    return table.append_column("funding_rate", pa.array(funding, pa.float64()))


def _drifted_metric(table: pa.Table, metric: str) -> pa.Table:
    """Schema drift of a funding/open-interest/basis file: the vendor starts sending an extra column
    (funding: the interval it settles on; open interest: its USD value; basis: its annualized form)."""
    extra = {"funding": "funding_interval_hours", "open_interest": "open_interest_usd"}.get(
        metric, "basis_apr"
    )
    return table.append_column(extra, pa.array([8.0] * table.num_rows, pa.float64()))


def _metric_of_listing(path: str) -> tuple[str, bool] | None:
    """(metric, preview) of a listing path, or None when it is not one."""
    for prefix, preview in ((PREVIEW_LISTING_PREFIX, True), (LISTING_PREFIX, False)):
        if path.startswith(prefix):
            metric = path[len(prefix) :]
            return (metric, preview) if "/" not in metric else None
    return None


def _with_non_finite(body: bytes, column: str, value: float | None) -> bytes:
    """The non-finite defect: the first row's ``column`` is NaN or infinite."""
    table = pq.read_table(io.BytesIO(body))
    values = table[column].to_pylist()
    values[0] = float("nan") if value is None else value
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, pa.float64()))
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _s3_error(status: int, code: str, message: str, resource: str, **extra: str) -> Response:
    parts = [f"<Code>{code}</Code>", f"<Message>{escape(message)}</Message>"]
    parts += [f"<{k}>{escape(v)}</{k}>" for k, v in extra.items()]
    parts += [f"<Resource>{escape(resource)}</Resource>", "<RequestId>EMULATOR</RequestId>"]
    body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>"
    return Response(status, body.encode(), "application/xml")


class AperiodicHandler:
    """Serves the Aperiodic API and its presigned file host for one ``Emulator``."""

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    # -- routing --------------------------------------------------------------------------------

    def classify(self, path: str) -> str | None:
        if path.startswith(API_PREFIX):
            return "list"
        if path.startswith(FILE_PREFIX):
            return "file"
        return None

    def hands_out_urls(self, path: str) -> bool:
        listing = _metric_of_listing(path)
        return listing is not None and listing[0] in METRICS

    def handle(self, request: Request) -> Response:
        if request.path.startswith(FILE_PREFIX):
            return self._file(request)
        listing = _metric_of_listing(request.path)
        if listing is not None and listing[0] in METRICS:
            return self._listing(request, preview=listing[1], metric=listing[0])
        if request.path == SYMBOLS_PATH:
            return self._symbols(request)
        return json_error(404, [f"Unknown endpoint {request.path}"])

    def status_response(self, target: str, status: int, retry_after: int | None) -> Response:
        headers = retry_after_header(retry_after)
        if target == "file":
            code = {429: "SlowDown", 503: "SlowDown", 500: "InternalError"}.get(status, "ServiceUnavailable")
            response = _s3_error(status, code, "Please reduce your request rate.", "")
            response.headers.update(headers)
            return response
        details = [f"Rate limit exceeded, retry after {retry_after} seconds"] if status == 429 else []
        return json_error(status, details or ["Injected fault"], headers=headers)

    # -- API ------------------------------------------------------------------------------------

    def _auth(self, request: Request, *, preview: bool) -> Response | None:
        key = request.headers.get("X-API-KEY")
        if not key:
            return json_error(401, ["Missing X-API-KEY header"], error="Authorization Required")
        if key == PREVIEW_KEY:
            if preview or request.path == SYMBOLS_PATH:
                return None
            return json_error(
                403,
                ["DEMO-KEY only serves the preview endpoints, e.g. /api/v1/data/preview/derivative_price"],
                error="Forbidden",
                code="preview_key_only",
            )
        if key not in self.emu.api_keys:
            return json_error(401, ["Invalid API key"], error="Authorization Required")
        return None

    def _listing(self, request: Request, *, preview: bool, metric: str = PRICE_METRIC) -> Response:
        denied = self._auth(request, preview=preview)
        if denied is not None:
            return denied
        names = ("timestamp", "interval", "exchange", "symbol", "start_date", "end_date")
        values = {name: request.param(name) for name in names}
        missing = [f"Missing required parameter: {n}" for n, v in values.items() if not v]
        if missing:
            return json_error(400, missing, error="Invalid request parameters")
        timestamp, interval = values["timestamp"] or "", values["interval"] or ""
        exchange, symbol = values["exchange"] or "", values["symbol"] or ""
        if interval in PLAN_INTERVALS:
            return json_error(
                403,
                [f"Interval {interval} requires a Tier 3 subscription"],
                error="Interval not available on your plan",
                code="interval_not_in_plan",
            )
        problems: list[str] = []
        if timestamp not in md.TIMESTAMP_TYPES:
            problems.append(f"Invalid timestamp {timestamp!r}: expected one of exchange, true")
        if interval not in md.INTERVALS:
            problems.append(f"Invalid interval {interval!r}: expected one of {', '.join(md.INTERVALS)}")
        dates: dict[str, date] = {}
        for name in ("start_date", "end_date"):
            raw = values[name] or ""
            try:
                if not _DATE_RE.match(raw):
                    raise ValueError
                dates[name] = date.fromisoformat(raw)
            except ValueError:
                problems.append(f"Invalid {name} {raw!r}: expected YYYY-MM-DD")
        if len(dates) == 2 and dates["end_date"] < dates["start_date"]:
            problems.append("end_date must be greater than or equal to start_date")
        if exchange not in md.EXCHANGES:
            problems.append(f"Invalid exchange {exchange!r}: expected one of {', '.join(md.EXCHANGES)}")
        elif exchange not in METRIC_VENUES[metric]:
            covered = ", ".join(METRIC_VENUES[metric])
            problems.append(f"Invalid exchange {exchange!r} for {metric}: expected one of {covered}")
        if problems:
            return json_error(400, problems, error="Invalid request parameters")
        stored = self._stored_periods(
            metric, exchange, interval, timestamp, symbol, dates["start_date"], dates["end_date"]
        )
        if stored is None and symbol not in md.SYMBOLS[exchange]:
            return json_error(404, [f"Symbol {symbol!r} not found on {exchange}"], error="Symbol not found")

        periods = (
            stored
            if stored is not None
            else list_periods(exchange, symbol, dates["start_date"], dates["end_date"], self.emu.today)
        )
        if preview:
            in_slice = (
                exchange == PREVIEW_EXCHANGE and symbol in PREVIEW_SYMBOLS and interval in PREVIEW_INTERVALS
            )
            periods = [p for p in periods if in_slice and (p.year, p.month) in PREVIEW_MONTHS]
        expired = request.fault is not None and request.fault.kind == "expired_url"
        signed_at = self.emu.expired_sign_time(URL_EXPIRES) if expired else self.emu.presign_now()
        files = []
        for p in unordered(periods):
            entry: dict[str, object] = {"year": p.year, "month": p.month}
            if p.day is not None:
                entry["day"] = p.day
            entry["url"] = self._presign(
                request.base_url, metric, exchange, interval, timestamp, symbol, p, signed_at
            )
            files.append(entry)
        return json_response(200, {"files": files})

    def _stored_folder(
        self, metric: str, exchange: str, interval: str, timestamp: str, symbol: str
    ) -> Path | None:
        """Prebuilt store: ``{root}/{exchange}/...`` for derivative_price, ``{root}/{metric}/{exchange}/...``
        for the other metrics."""
        root = self.emu.aperiodic_files
        if root is None:
            return None
        base = Path(root) if metric == PRICE_METRIC else Path(root) / metric
        return base / exchange / interval / timestamp / symbol

    def _stored_object(
        self, metric: str, exchange: str, interval: str, timestamp: str, symbol: str, label: str
    ) -> Path | None:
        folder = self._stored_folder(metric, exchange, interval, timestamp, symbol)
        path = folder / f"{label}.parquet" if folder is not None else None
        return path if path is not None and path.is_file() else None

    def _stored_periods(
        self, metric: str, exchange: str, interval: str, timestamp: str, symbol: str, start: date, end: date
    ) -> list[FilePeriod] | None:
        """Monthly objects of a prebuilt series overlapping [start, end], or None if none is stored."""
        folder = self._stored_folder(metric, exchange, interval, timestamp, symbol)
        if folder is None or not folder.is_dir():
            return None
        periods = []
        for path in sorted(folder.glob("*.parquet")):
            match = _PERIOD_RE.match(path.name)
            if match and match.group(3) is None:
                period = FilePeriod(int(match.group(1)), int(match.group(2)))
                lo, hi = period.bounds()
                if lo <= end and hi > start:
                    periods.append(period)
        return periods

    def _symbols(self, request: Request) -> Response:
        denied = self._auth(request, preview=False)
        if denied is not None:
            return denied
        exchange = request.param("exchange")
        if not exchange:
            return json_error(
                400, ["Missing required parameter: exchange"], error="Invalid request parameters"
            )
        if exchange not in md.EXCHANGES:
            return json_error(
                400,
                [f"Invalid exchange {exchange!r}: expected one of {', '.join(md.EXCHANGES)}"],
                error="Invalid request parameters",
            )
        return json_response(
            200, {"symbols": sorted(md.SYMBOLS[exchange]), "exchange": exchange, "bucket": "derivative_price"}
        )

    # -- presigned file host --------------------------------------------------------------------

    def _signature(self, path: str, amz_date: str, expires: str) -> str:
        message = f"{path}\n{amz_date}\n{expires}".encode()
        return hmac.new(self.emu.signing_secret, message, hashlib.sha256).hexdigest()

    def _presign(
        self,
        base_url: str,
        metric: str,
        exchange: str,
        interval: str,
        timestamp: str,
        symbol: str,
        period: FilePeriod,
        signed_at: datetime,
    ) -> str:
        folder = "" if metric == PRICE_METRIC else f"{metric}/"
        path = f"{FILE_PREFIX}{folder}{exchange}/{interval}/{timestamp}/{symbol}/{period.label}.parquet"
        amz_date = signed_at.astimezone(UTC).strftime(_AMZ_DATE)
        expires = str(URL_EXPIRES)
        query = urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": f"{_ACCESS_KEY}/{amz_date[:8]}/us-east-1/s3/aws4_request",
                "X-Amz-Date": amz_date,
                "X-Amz-Expires": expires,
                "X-Amz-SignedHeaders": "host",
                "X-Amz-Signature": self._signature(path, amz_date, expires),
            }
        )
        return f"{base_url}{quote(path, safe='/')}?{query}"

    def _file(self, request: Request) -> Response:
        path = request.path
        amz_date = request.param("X-Amz-Date") or ""
        expires = request.param("X-Amz-Expires") or ""
        signature = request.param("X-Amz-Signature") or ""
        if not (amz_date and expires and signature and request.param("X-Amz-Credential")):
            return _s3_error(
                403,
                "AccessDenied",
                "Query-string authentication requires the Signature, Expires and Credential parameters",
                path,
            )
        if not hmac.compare_digest(signature, self._signature(path, amz_date, expires)):
            return _s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
                path,
            )
        signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
        now = self.emu.clock.now()
        if now > signed_at + timedelta(seconds=int(expires)):
            return _s3_error(
                403,
                "AccessDenied",
                "Request has expired",
                path,
                **{
                    "X-Amz-Expires": expires,
                    "Expires": (signed_at + timedelta(seconds=int(expires))).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
        if now < signed_at - timedelta(minutes=15):
            return _s3_error(403, "AccessDenied", "Request is not valid yet", path)

        parts = path[len(FILE_PREFIX) :].split("/")
        metric = PRICE_METRIC
        if len(parts) == 6 and parts[0] in METRICS and parts[0] != PRICE_METRIC:
            metric, parts = parts[0], parts[1:]
        match = _PERIOD_RE.match(parts[-1]) if len(parts) == 5 else None
        if match is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.", path)
        exchange, interval, timestamp, symbol = parts[:4]
        stored = self._stored_object(
            metric, exchange, interval, timestamp, symbol, parts[-1].removesuffix(".parquet")
        )
        if stored is not None:
            return Response(200, stored.read_bytes(), "application/octet-stream", {})
        y, m, d = match.groups()
        try:
            period = FilePeriod(int(y), int(m), int(d) if d else None)
            period.bounds()  # rejects month 13, Feb 30, ...
            md.validate(exchange, symbol, interval, timestamp)
        except (KeyError, ValueError):
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.", path)
        drift = request.fault is not None and request.fault.kind == "drift_columns"
        body = _file_bytes(metric, exchange, symbol, interval, timestamp, period, drift)
        if request.fault is not None and request.fault.kind in VALUE_FAULTS:
            body = _with_non_finite(body, request.fault.field or "mark_price", request.fault.value)
        return Response(
            200,
            body,
            "application/octet-stream",
            {"ETag": f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'},
        )
