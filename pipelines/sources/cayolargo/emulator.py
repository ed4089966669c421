"""CayøLargo's Deribit futures marketdata (vendor-docs/PROTOCOLS.md §3), served from the sample.

``GET /v1/marketdata/futures?coin=&instrument_id=&from=&to=&limit=``: one row per instrument per
10-minute snapshot, ordered by timestamp then instrument_id; ``from``/``to`` inclusive ISO 8601 UTC;
no ``from`` = the latest snapshot only; ``limit`` default 500, max 5000 (over max -> 400).

There is no real Deribit data in the sample, so the snapshots are **derived deterministically from
the real Binance BTC/ETH series** (see README.md, "CayøLargo"):

* a snapshot at ``T`` takes the price at the instant ``T`` from the 1m series of ``market_data``
  (the final value of the minute starting at ``T - 1m``): so at whole hours it is the real Binance
  hourly close, in between the Brownian-bridge minute path anchored to it;
* ``index_price`` = the derived index of ``market_data`` (``mark / (1 + p(t))``); perpetual
  ``mark_price``/``last_price`` = the Binance mark/last;
* dated futures (quarterlies, 08:00 UTC on the last Friday of Mar/Jun/Sep/Dec; the next three are
  listed, an expired one disappears) have ``mark = index x (1 + r x dte_days / 365)`` with an annual
  carry ``r`` = 4% + 0.6 x the annualized real funding (clamped to [-10%, 35%]) + 0.5% per quarter
  out, so the basis decays to 0 at expiry; their ``last`` = mark x (perp last / perp mark);
* ``funding_rate`` (perpetual) = the real Binance 8-hourly funding interpolated linearly between
  settlements (the "current" rate), ``funding_8h`` = the last settled real rate;
* bid/ask, their sizes and open interest are synthetic: tick-rounded spreads around the mark,
  sizes and OI from a private RNG seeded by SHA-256 of (instrument, time);
* ``estimated_delivery_price`` (alpha tier) = the index.

Configurable per emulator (documented defaults, because the vendor doc leaves them open):
``auth_header`` (``X-API-Key``) with optional ``auth_prefix`` (e.g. ``"Bearer "``), ``envelope``
(``None`` = a bare JSON list; a name = ``{"<name>": rows, "count": n}``) and ``plan`` (``alpha``
serves every field, ``pro`` omits ``estimated_delivery_price``).
"""

from __future__ import annotations

import bisect
import calendar
import hashlib
import json
import math
import random
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.emulator import market_data as md
from pipelines.emulator.disk_cache import on_disk
from pipelines.emulator.faults import VALUE_FAULTS
from pipelines.emulator.server import ApiOnlyHandler, Request, Response, json_error, retry_after_header

if TYPE_CHECKING:
    from pipelines.emulator.server import Emulator

API_PREFIX = "/v1/"
FUTURES_PATH = "/v1/marketdata/futures"
DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
SNAPSHOT_MS = 600_000
LISTED_QUARTERLIES = 3

COINS: dict[str, str | None] = {"BTC": "BTCUSDT", "ETH": "ETHUSDT", "SOL": None}
"""Coins the vendor documents -> the sample's native symbol (SOL is valid but has no data here)."""
CONTRACT_SIZE: dict[str, float] = {"BTC": 10.0, "ETH": 1.0}
"""USD per contract (vendor doc)."""
_TICK: dict[str, float] = {"BTC": 0.5, "ETH": 0.05}
_PERP_OI: dict[str, float] = {"BTC": 120e6, "ETH": 500e6}  # contracts: ~$1.2B and ~$0.5B
_FUTURE_OI_SHARE = (0.5, 0.3, 0.15)  # of the perpetual's, nearest quarterly first
PERPETUAL_EXPIRY = "3000-01-01T00:00:00Z"

FIELDS: tuple[str, ...] = (
    "timestamp",
    "coin",
    "instrument_id",
    "contract_type",
    "expiration_timestamp",
    "contract_size",
    "mark_price",
    "bid_price",
    "ask_price",
    "best_bid_amount",
    "best_ask_amount",
    "last_price",
    "open_interest",
    "index_price",
    "funding_rate",
    "funding_8h",
    "estimated_delivery_price",
)
ALPHA_FIELDS: frozenset[str] = frozenset({"estimated_delivery_price"})
_STRING_FIELDS = frozenset({"timestamp", "coin", "instrument_id", "contract_type", "expiration_timestamp"})
SCHEMA = pa.schema(
    [pa.field("ts_ms", pa.int64())]
    + [pa.field(f, pa.string() if f in _STRING_FIELDS else pa.float64()) for f in FIELDS]
)
_MONTH_CODES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def iso(t_ms: int) -> str:
    """Epoch ms -> ``YYYY-MM-DDTHH:MM:SSZ`` (the vendor's timestamp format here)."""
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def quarterly_expiry(year: int, month: int) -> datetime:
    """Deribit quarterly expiry: 08:00 UTC on the last Friday of the month."""
    last = date(year, month, calendar.monthrange(year, month)[1])
    friday = last - timedelta(days=(last.weekday() - 4) % 7)
    return datetime(friday.year, friday.month, friday.day, 8, tzinfo=UTC)


def listed_expiries(t_ms: int, n: int = LISTED_QUARTERLIES) -> list[datetime]:
    """The next ``n`` quarterly expiries strictly after ``t_ms`` (an expired future is delisted)."""
    t = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
    out: list[datetime] = []
    year, month = t.year, (t.month + 2) // 3 * 3
    while len(out) < n:
        e = quarterly_expiry(year, month)
        if e > t:
            out.append(e)
        year, month = (year + 1, 3) if month == 12 else (year, month + 3)
    return out


def future_id(coin: str, expiry: datetime) -> str:
    """Deribit's name: ``BTC-27MAR26`` (no leading zero on the day)."""
    return f"{coin}-{expiry.day}{_MONTH_CODES[expiry.month - 1]}{expiry.year % 100:02d}"


def carry_rate(funding_rate: float, rank: int) -> float:
    """Annual carry of the ``rank``-th listed quarterly (0 = nearest), from the funding in force."""
    r = 0.04 + 0.6 * funding_rate * 3 * 365
    return min(max(r, -0.10), 0.35) + 0.005 * rank


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(["cayolargo-emulator", *map(str, parts)]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _floor_tick(x: float, tick: float) -> float:
    return round(math.floor(x / tick) * tick, 8)


def _ceil_tick(x: float, tick: float) -> float:
    return round(math.ceil(x / tick) * tick, 8)


def _month_bounds_ms(year: int, month: int) -> tuple[int, int]:
    nxt = (year + 1, 1) if month == 12 else (year, month + 1)
    lo = int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)
    return lo, int(datetime(nxt[0], nxt[1], 1, tzinfo=UTC).timestamp() * 1000)


@lru_cache(maxsize=48)
@on_disk
def month_snapshots(coin: str, year: int, month: int) -> pa.Table:
    """Every row of one coin's snapshots in one UTC month, ordered by (timestamp, instrument_id).

    Rows exist where the sample has a mark price for the instant (no ``today`` cut here: the
    handler applies it).
    """
    native = COINS.get(coin)
    if native is None:
        return SCHEMA.empty_table()
    lo, hi = _month_bounds_ms(year, month)
    first, last = md.data_bounds("binance-futures", f"perpetual-{coin}-USDT:USDT")
    if hi <= md._to_ms(first) or lo > md._to_ms(last) + 3_600_000:
        return SCHEMA.empty_table()
    minute = md.derivative_price_table(
        "binance-futures",
        f"perpetual-{coin}-USDT:USDT",
        "1m",
        "exchange",
        datetime.fromtimestamp((lo - 60_000) / 1000, tz=UTC).replace(tzinfo=None),
        datetime.fromtimestamp((hi - 60_000) / 1000, tz=UTC).replace(tzinfo=None),
    )
    times = [t // 1000 + 60_000 for t in minute["time"].cast(pa.int64()).to_pylist()]  # instant = minute end
    lasts = minute["last_price"].to_pylist()
    marks = minute["mark_price"].to_pylist()
    indexes = minute["index_price"].to_pylist()
    series = md.hourly_series(native)
    size, tick = CONTRACT_SIZE[coin], _TICK[coin]
    cols: dict[str, list[object]] = {name: [] for name in SCHEMA.names}

    def add(t: int, row: dict[str, object]) -> None:
        cols["ts_ms"].append(t)
        for name in FIELDS:
            cols[name].append(row.get(name))

    for t, last_px, mark, index in zip(times, lasts, marks, indexes, strict=True):
        if t % SNAPSHOT_MS or mark is None or index is None:
            continue
        stamp = iso(t)
        funding = series.premium(t) + md.INTEREST_RATE
        k = bisect.bisect_right(series.funding_times, t) - 1
        funding_8h = series.funding_rates[k] if k >= 0 else None
        last_ratio = last_px / mark if last_px is not None else None
        wave = 1 + 0.15 * math.sin(2 * math.pi * t / (17 * 86_400_000))
        rows: list[dict[str, object]] = []
        for rank, expiry in enumerate(listed_expiries(t)):
            iid = future_id(coin, expiry)
            dte_days = (expiry.timestamp() * 1000 - t) / 86_400_000
            fut_mark = index * (1 + carry_rate(funding, rank) * dte_days / 365)
            rng = _rng(iid, t)
            oi = _PERP_OI[coin] * _FUTURE_OI_SHARE[rank] * math.sqrt(min(1.0, dte_days / 14)) * wave
            rows.append(
                {
                    "instrument_id": iid,
                    "contract_type": "FUTURES",
                    "expiration_timestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "mark_price": fut_mark,
                    "bid_price": _floor_tick(fut_mark * (1 - 1.5e-4), tick),
                    "ask_price": _ceil_tick(fut_mark * (1 + 1.5e-4), tick),
                    "best_bid_amount": size * round(rng.lognormvariate(7.0, 1.0)),
                    "best_ask_amount": size * round(rng.lognormvariate(7.0, 1.0)),
                    "last_price": fut_mark * last_ratio if last_ratio is not None else None,
                    "open_interest": float(round(oi * (1 + 0.01 * rng.gauss(0.0, 1.0)))),
                    "funding_rate": None,
                    "funding_8h": None,
                }
            )
        rng = _rng(f"{coin}-PERPETUAL", t)
        rows.append(
            {
                "instrument_id": f"{coin}-PERPETUAL",
                "contract_type": "PERPETUALS",
                "expiration_timestamp": PERPETUAL_EXPIRY,
                "mark_price": mark,
                "bid_price": _floor_tick(mark * (1 - 0.5e-4), tick),
                "ask_price": _ceil_tick(mark * (1 + 0.5e-4), tick),
                "best_bid_amount": size * round(rng.lognormvariate(9.0, 1.0)),
                "best_ask_amount": size * round(rng.lognormvariate(9.0, 1.0)),
                "last_price": last_px,
                "open_interest": float(round(_PERP_OI[coin] * wave * (1 + 0.01 * rng.gauss(0.0, 1.0)))),
                "funding_rate": funding,
                "funding_8h": funding_8h,
            }
        )
        for row in sorted(rows, key=lambda r: str(r["instrument_id"])):
            row.update(
                timestamp=stamp,
                coin=coin,
                contract_size=size,
                index_price=index,
                estimated_delivery_price=index,
            )
            add(t, row)
    return pa.Table.from_pydict(cols, schema=SCHEMA)


def _months(lo_ms: int, hi_ms: int) -> list[tuple[int, int]]:
    a = datetime.fromtimestamp(lo_ms / 1000, tz=UTC)
    b = datetime.fromtimestamp(hi_ms / 1000, tz=UTC)
    out: list[tuple[int, int]] = []
    y, m = a.year, a.month
    while (y, m) <= (b.year, b.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def query(coin: str, lo_ms: int, hi_ms: int, limit: int, instrument_id: str | None = None) -> pa.Table:
    """Rows with ``lo_ms <= ts <= hi_ms`` (both inclusive), first ``limit`` in order."""
    parts: list[pa.Table] = []
    got = 0
    if hi_ms < lo_ms:
        return SCHEMA.empty_table()
    for y, m in _months(lo_ms, hi_ms):
        table = month_snapshots(coin, y, m)
        ts = table["ts_ms"]
        mask = pc.and_(pc.greater_equal(ts, lo_ms), pc.less_equal(ts, hi_ms))
        if instrument_id is not None:
            mask = pc.and_(mask, pc.equal(table["instrument_id"], instrument_id))
        part = table.filter(mask).slice(0, limit - got)
        parts.append(part)
        got += part.num_rows
        if got >= limit:
            break
    return pa.concat_tables(parts) if parts else SCHEMA.empty_table()


def latest(coin: str, hi_ms: int, instrument_id: str | None = None) -> pa.Table:
    """The rows of the latest snapshot at or before ``hi_ms``."""
    y, m = (
        datetime.fromtimestamp(hi_ms / 1000, tz=UTC).year,
        datetime.fromtimestamp(hi_ms / 1000, tz=UTC).month,
    )
    for _ in range(6):  # a gap of more than a few months means there is no data at all
        table = month_snapshots(coin, y, m)
        if instrument_id is not None:
            table = table.filter(pc.equal(table["instrument_id"], instrument_id))
        table = table.filter(pc.less_equal(table["ts_ms"], hi_ms))
        if table.num_rows:
            last = table["ts_ms"][-1].as_py()
            return table.filter(pc.equal(table["ts_ms"], last))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return SCHEMA.empty_table()


def _parse_time(raw: str) -> int:
    """ISO 8601 (``Z``, an offset, or naive = UTC; a bare date = its midnight) -> epoch ms."""
    value = datetime.fromisoformat(raw.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


class CayoLargoHandler(ApiOnlyHandler):
    """Serves ``/v1/marketdata/futures`` for one ``Emulator``; the knobs below are per instance."""

    api_prefix = API_PREFIX

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        self.auth_header = "X-API-Key"
        self.auth_prefix = ""
        self.envelope: str | None = None
        self.plan = "alpha"

    def status_response(self, target: str, status: int, retry_after: int | None) -> Response:
        headers = retry_after_header(retry_after)
        details = [f"Rate limit exceeded, retry after {retry_after} seconds"] if status == 429 else []
        return json_error(status, details or ["Injected fault"], headers=headers)

    @property
    def cutoff_ms(self) -> int:
        """Snapshots exist strictly before the emulator's today (UTC midnight)."""
        t = self.emu.today
        return int(datetime(t.year, t.month, t.day, tzinfo=UTC).timestamp() * 1000)

    def handle(self, request: Request) -> Response:
        if request.path != FUTURES_PATH:
            return json_error(404, [f"Unknown endpoint {request.path}"])
        denied = self._auth(request)
        if denied is not None:
            return denied
        coin = request.param("coin")
        if not coin:
            return json_error(400, ["Missing required parameter: coin"], error="Invalid request parameters")
        if coin not in COINS:
            return json_error(
                400,
                [f"Invalid coin {coin!r}: expected one of {', '.join(COINS)}"],
                error="Invalid request parameters",
            )
        problems: list[str] = []
        limit = DEFAULT_LIMIT
        raw_limit = request.param("limit")
        if raw_limit is not None:
            if not raw_limit.strip().isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
                problems.append(f"Invalid limit {raw_limit!r}: expected an integer from 1 to {MAX_LIMIT}")
            else:
                limit = int(raw_limit)
        bounds: dict[str, int] = {}
        for name in ("from", "to"):
            raw = request.param(name)
            if raw is None:
                continue
            try:
                bounds[name] = _parse_time(raw)
            except ValueError:
                problems.append(f"Invalid {name} {raw!r}: expected ISO 8601, e.g. 2026-03-08T00:00:00Z")
        if "from" in bounds and "to" in bounds and bounds["to"] < bounds["from"]:
            problems.append("to must be greater than or equal to from")
        if problems:
            return json_error(400, problems, error="Invalid request parameters")
        instrument_id = request.param("instrument_id") or None
        hi = min(bounds.get("to", self.cutoff_ms - 1), self.cutoff_ms - 1)
        if "from" in bounds:
            table = query(coin, bounds["from"], hi, limit, instrument_id)
        else:
            table = latest(coin, hi, instrument_id).slice(0, limit)
        return self._rows_response(table, request)

    def _auth(self, request: Request) -> Response | None:
        value = request.headers.get(self.auth_header)
        if not value:
            return json_error(401, [f"Missing {self.auth_header} header"], error="Not authenticated")
        if not value.startswith(self.auth_prefix) or value[len(self.auth_prefix) :] not in self.emu.api_keys:
            return json_error(401, ["Invalid API key"], error="Not authenticated")
        return None

    def _rows_response(self, table: pa.Table, request: Request) -> Response:
        drop = {"ts_ms"}
        if self.plan != "alpha":
            drop |= ALPHA_FIELDS
        fault = request.fault
        if fault is not None and fault.kind == "missing_field":
            drop.add(fault.field or "mark_price")
        rows = table.drop_columns([c for c in table.column_names if c in drop]).to_pylist()
        if fault is not None and fault.kind in VALUE_FAULTS and rows:
            # Python's json writes NaN/Infinity, as a vendor serializing floats this way would
            rows[0][fault.field or "mark_price"] = fault.value
        payload: object = rows if self.envelope is None else {self.envelope: rows, "count": len(rows)}
        return Response(200, json.dumps(payload).encode(), "application/json")
