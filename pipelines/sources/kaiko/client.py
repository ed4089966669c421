"""Kaiko ``derivatives.v2/price`` (PROTOCOLS.md §2), pages parsed by ``pyarrow.json``: no Python row
objects. No ``from __future__ import annotations``: Dagster reads the resource's fields."""

import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple, Unpack

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from pipelines.http import HttpOptions, VendorClient
from pipelines.paging import NextUrlPaginator, paginate
from pipelines.resources import VendorResource
from pipelines.sources.kaiko.source import KaikoCode
from pipelines.validation import value_problem

REAL_BASE_URL = "https://eu.market-api.kaiko.io"
PRICE_PATH = "/v2/data/derivatives.v2/price"
PAGE_SIZE = 1000

ROW_TYPE = pa.struct(
    [("timestamp", pa.int64()), *((f, pa.string()) for f in ("index_price", "mark_price", "price"))]
)
RANGE_TYPE = pa.struct([("start_timestamp", pa.int64()), ("end_timestamp", pa.int64())])
PAGE_SCHEMA = pa.schema(
    {"result": pa.string(), "message": pa.string(), "data": pa.list_(ROW_TYPE), "next_url": pa.string()}
    | {"access": pa.struct([("access_range", RANGE_TYPE), ("data_range", RANGE_TYPE)])}
)
_PARSE_OPTIONS = pj.ParseOptions(
    explicit_schema=PAGE_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=True
)
_ROW_FIELDS = (b'"timestamp"', b'"index_price"', b'"mark_price"', b'"price"')

PRICES = ("last_price", "index_price", "mark_price")
# what a page becomes at the boundary: numbers and UTC timestamps, named as markhouse names them
ROWS_SCHEMA = pa.schema([("ts", pa.timestamp("ms", tz="UTC")), *((name, pa.float64()) for name in PRICES)])


class PageError(ValueError):
    """A page that is not Kaiko's JSON envelope with rows (the message says what it was)."""


def parse_page(body: bytes) -> dict[str, Any]:
    """rows, next_url, the key's access range (epoch ms) and size; ``result`` may be absent (as in the
    vendor's own example)."""
    head = body[:64].lstrip().lower()
    if not head.startswith(b"{"):
        kind = "an HTML page" if head.startswith((b"<!doctype", b"<html")) else "not a JSON object"
        raise PageError(f"expected Kaiko's JSON envelope, got {kind}: {body[:60]!r}")
    try:
        read = pj.ReadOptions(use_threads=False, block_size=max(len(body) + 1, 1 << 16))
        table = pj.read_json(io.BytesIO(body), read_options=read, parse_options=_PARSE_OPTIONS)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise PageError(f"unreadable JSON page ({len(body)} bytes): {exc}") from None
    if table.num_rows != 1:
        raise PageError(f"expected one JSON envelope, got {table.num_rows}")
    result = table["result"][0].as_py()
    if result == "error":
        raise PageError(f"Kaiko answered an error: {table['message'][0].as_py() or 'no message'}")
    if result not in (None, "success"):
        raise PageError(f"result is {result!r}: {table['message'][0].as_py()!r}")
    data = table["data"].combine_chunks()
    if data.null_count:
        raise PageError("the envelope has no 'data' array")
    rows = pc.list_flatten(data)
    assert isinstance(rows, pa.StructArray)
    if len(rows) and (missing := [f.decode() for f in _ROW_FIELDS if f not in body]):
        raise PageError(f"schema drift: rows lack {', '.join(missing)}")
    ts = rows.field("timestamp")
    if ts.null_count:
        raise PageError("a row has no timestamp")
    try:
        prices = [pc.cast(rows.field(name), pa.float64()) for name in ("price", "index_price", "mark_price")]
    except pa.ArrowInvalid as exc:
        raise PageError(f"a price is not a number: {exc}") from None
    converted = pa.Table.from_arrays([ts.cast(pa.timestamp("ms", tz="UTC")), *prices], schema=ROWS_SCHEMA)
    if problem := value_problem(pl.DataFrame(converted), PRICES, "ts"):
        raise PageError(problem)
    access = (table["access"][0].as_py() or {}).get("access_range") or {}
    span = (access.get("start_timestamp"), access.get("end_timestamp"))
    return {"rows": converted, "next_url": table["next_url"][0].as_py(), "access": span, "bytes": len(body)}


class Fetched(NamedTuple):
    """Every row of one request chain, concatenated (order as served, duplicates kept)."""

    rows: pa.Table
    pages: int
    bytes: int
    access: tuple[int | None, int | None]  # the key's access range (first page), epoch ms

    def entitled(self, start: datetime, end: datetime) -> bool:
        lo, hi = self.access
        return (hi is None or hi > start.timestamp() * 1000) and (lo is None or lo < end.timestamp() * 1000)


class KaikoClient(VendorClient):
    vendor = "kaiko"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        page_size: int = PAGE_SIZE,
        sort: str = "asc",
        **options: Unpack[HttpOptions],
    ):
        headers = {"Accept": "application/json", **({"X-Api-Key": api_key} if api_key else {})}
        super().__init__(base_url, api_key, headers, **options)
        self.page_size, self.sort, self.price_url = page_size, sort, f"{self.base_url}{PRICE_PATH}"

    def fetch(
        self, code: KaikoCode, interval: str, start: datetime, end: datetime, count: Callable[[int], None]
    ) -> Fetched:
        """Every row of [start, end), following ``next_url``; ``count`` hears each page's rows."""
        params = self._params(code, interval, start, end, self.page_size, self.sort)
        request = f"{code.exchange} {code.instrument} {interval} {_iso(start)}..{_iso(end)}"

        def parse(body: bytes) -> dict[str, Any]:
            try:
                page = parse_page(body)
            except PageError as exc:  # paginate adds the page number and the URL
                raise PageError(f"{request}: {exc}") from None
            count(page["rows"].num_rows)
            return page

        chain = NextUrlPaginator(self.price_url, params)  # 2,000 pages: far more than a month of 1m rows
        got = list(paginate(self.http, chain, parse=parse, max_pages=2_000, max_seconds=1_800))  # 1 or more
        rows = pa.concat_tables([p["rows"] for p in got])
        return Fetched(rows, len(got), sum(p["bytes"] for p in got), got[0]["access"])

    def first_after(self, code: KaikoCode, interval: str, start: datetime, end: datetime) -> datetime | None:
        """The first row in [start, end): an empty month before it predates the contract's listing."""
        one = NextUrlPaginator(self.price_url, self._params(code, interval, start, end, 1, "asc"))
        rows = next(paginate(self.http, one, parse=parse_page))["rows"]
        return rows["ts"][0].as_py() if rows.num_rows else None

    @staticmethod
    def _params(code: KaikoCode, interval: str, start: datetime, end: datetime, size: int, sort: str) -> Any:
        times = {"start_time": _iso(start), "end_time": _iso(end)}
        return {**code._asdict(), "interval": interval, "page_size": size, "sort": sort, **times}


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("Kaiko times must be timezone-aware (UTC)")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class KaikoResource(VendorResource):
    """A real host defaults to Kaiko's older public 1000 requests/minute; limits are per contract."""

    vendor = "kaiko"
    REAL_RATE_LIMIT: float = 1000 / 60

    def client(self) -> KaikoClient:
        base_url, api_key, emulator = self.endpoint()
        if (rate := self.rate_limit_per_second) is None and emulator is None:
            rate = self.REAL_RATE_LIMIT
        return KaikoClient(base_url or REAL_BASE_URL, api_key, rate_limit_per_second=rate)
