"""Kaiko's ``derivatives.v2/price`` wire protocol (vendor-docs/PROTOCOLS.md §2), from the sample.

``GET /v2/data/derivatives.v2/price`` with header ``X-Api-Key``; query ``exchange``,
``instrument_class``, ``instrument``, ``interval`` (1m 1h 4h 1d, default 1m), ``page_size``
(1..1000, default 100), ``sort`` (asc/desc, default desc), ``start_time`` (inclusive),
``end_time`` (exclusive), or a ``continuation_token`` alone (it encodes all of them and the
cursor). The answer is Kaiko's envelope (``result``, ``query``, ``time``, ``timestamp``,
``data``, ``access``, ``next_url`` while a page came back full); prices are strings,
``timestamp`` is the period start in epoch ms.

Instruments (Kaiko codes; ``bnce`` = Binance USD-M, ``okex`` = OKX):

* ``bnce`` ``perpetual-future`` ``btcusdt``, ``ethusdt``: the real perpetuals of ``market_data``.
* ``bnce`` ``future`` ``btcusdt<YYMMDD>``, ``ethusdt<YYMMDD>`` for every Binance quarterly delivery
  date (last Friday of Mar/Jun/Sep/Dec), delivered at 08:00 UTC and listed 182 days earlier:
  **derived** from the perpetual minute by minute, see ``_future_rows``.
* ``okex`` ``future`` ``btcusd<YYMMDD>``, ``ethusd<YYMMDD>`` (OKX's coin-margined futures) for every
  Friday, delivered at 08:00 UTC, listed 182 days earlier for a quarterly date and 28 days for the
  others: the same derivation as Binance's (the sample has one underlying).
* ``okex`` ``option`` ``btc-usd-<YYMMDD>-<strike>-<c|p>`` (strike a multiple of 1000; ETH of 50),
  listed and delivered as the future of its date, its prices in the coin from the known volatility
  surface ``surface_vol`` over that future: see ``_option_rows``.

A 1m row is the minute's final values (the ``market_data`` 1m series). A 1h/4h/1d row is the
data of the LAST minute of its period that has data (per price column), stamped with the period
start, computed from that same 1m series, so a client rolling 1m up to 1h finds Kaiko's own 1h
rows (for the perpetuals this is also the real hourly close).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import calendar
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from pipelines.emulator import market_data as md
from pipelines.emulator.disk_cache import on_disk
from pipelines.emulator.faults import VALUE_FAULTS
from pipelines.emulator.server import ApiOnlyHandler, Request, Response, json_response, retry_after_header

if TYPE_CHECKING:
    from pipelines.emulator.faults import Fault
    from pipelines.emulator.server import Emulator

PRICE_PATH = "/v2/data/derivatives.v2/price"
API_PREFIX = "/v2/"

EXCHANGE = "bnce"
KNOWN_EXCHANGES: frozenset[str] = frozenset({"bnce", "okex", "drbt", "bbsp", "hbdm", "bfnx"})
"""Kaiko exchange codes the emulator recognises; only ``SERVED`` is in the emulated contract."""
SERVED: frozenset[tuple[str, str]] = frozenset(
    {("bnce", "perpetual-future"), ("bnce", "future"), ("okex", "future"), ("okex", "option")}
)
CLASSES: tuple[str, ...] = ("future", "perpetual-future", "option")
INTERVAL_MS: dict[str, int] = {"1m": 60_000, "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000}
PERPETUALS: dict[str, str] = {"btcusdt": "perpetual-BTC-USDT:USDT", "ethusdt": "perpetual-ETH-USDT:USDT"}
"""Kaiko perpetual code -> the Atlas key ``market_data`` serves it under."""
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

FUTURE_LIFETIME = timedelta(days=182)
WEEKLY_LIFETIME = timedelta(days=28)
"""How long before expiry OKX's non-quarterly Friday contracts are listed here (keeps a demo small)."""
OKX_COINS: dict[str, str] = {"btc": "perpetual-BTC-USDT:USDT", "eth": "perpetual-ETH-USDT:USDT"}
STRIKE_STEP: dict[str, int] = {"btc": 1000, "eth": 50}
DELIVERY_HOUR = 8
BASE_CARRY = 0.05
"""Annual carry of the derived futures besides the part implied by the perpetual's premium."""

_MINUTE_MS = 60_000


@dataclass(frozen=True)
class Instrument:
    """A served instrument: the perpetual it comes from, and its life for a dated future."""

    instrument_class: str
    code: str
    perpetual: str  # Atlas key of the perpetual in market_data
    listed_ms: int | None = None
    expiry_ms: int | None = None
    strike: float | None = None  # an option's, with
    is_call: bool = False

    @property
    def future(self) -> Instrument:
        """An option's underlying future (same perpetual, listing and expiry)."""
        coin, _, yymmdd, *_ = self.code.split("-")
        return Instrument("future", f"{coin}usd{yymmdd}", self.perpetual, self.listed_ms, self.expiry_ms)


def _ms(d: datetime) -> int:
    return int(d.timestamp() * 1000)


def _is_quarterly(d: date) -> bool:
    """A Binance quarterly delivery date: the last Friday of March, June, September or December."""
    return d.month in (3, 6, 9, 12) and d.weekday() == 4 and (d + timedelta(days=7)).month != d.month


def _dated(klass: str, code: str, perpetual: str, yymmdd: str, okx: bool) -> Instrument | None:
    """A dated contract delivered on ``yymmdd`` at 08:00 UTC, if that is a date its venue lists."""
    try:
        delivery = date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return None
    quarterly = _is_quarterly(delivery)
    if not (quarterly or (okx and delivery.weekday() == 4)):
        return None
    expiry = datetime(delivery.year, delivery.month, delivery.day, DELIVERY_HOUR, tzinfo=UTC)
    life = FUTURE_LIFETIME if quarterly else WEEKLY_LIFETIME
    return Instrument(klass, code, perpetual, _ms(expiry - life), _ms(expiry))


def find_instrument(exchange: str, instrument_class: str, code: str) -> Instrument | None:
    """The served instrument for a Kaiko code, or None."""
    if (exchange, instrument_class) not in SERVED:
        return None
    if instrument_class == "perpetual-future":
        return Instrument(instrument_class, code, PERPETUALS[code]) if code in PERPETUALS else None
    if instrument_class == "future":
        pair, yymmdd = code[:-6], code[-6:]
        okx = exchange != EXCHANGE
        perpetual = {f"{c}usd": p for c, p in OKX_COINS.items()}.get(pair) if okx else PERPETUALS.get(pair)
        return (
            _dated(instrument_class, code, perpetual, yymmdd, okx) if perpetual and yymmdd.isdigit() else None
        )
    parts = code.split("-")  # btc-usd-260529-80000-c
    if len(parts) != 5 or parts[0] not in OKX_COINS or parts[1] != "usd" or parts[4] not in ("c", "p"):
        return None
    strike = int(parts[3]) if parts[3].isdigit() else 0
    if len(parts[2]) != 6 or not parts[2].isdigit() or strike <= 0 or strike % STRIKE_STEP[parts[0]]:
        return None
    future = _dated(instrument_class, code, OKX_COINS[parts[0]], parts[2], True)
    return None if future is None else replace(future, strike=float(strike), is_call=parts[4] == "c")


# --------------------------------------------------------------------------------------------------
# Rows: (timestamp_ms, index, mark, price) per month, and their JSON text, cached.

_Row = tuple[int, float | None, float | None, float | None]


def _perpetual_minutes(atlas_key: str, year: int, month: int) -> list[_Row]:
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    table = md.derivative_price_table("binance-futures", atlas_key, "1m", "exchange", start, end)
    times = [t // 1000 for t in table["time"].cast("int64").to_pylist()]
    return list(
        zip(
            times,
            table["index_price"].to_pylist(),
            table["mark_price"].to_pylist(),
            table["last_price"].to_pylist(),
            strict=True,
        )
    )


def _future_rows(inst: Instrument, perpetual: list[_Row]) -> list[_Row]:
    """A dated future derived from the real perpetual, minute by minute, deterministically.

    At observation time ``t`` (the end of the minute) with ``tau`` = years to expiry and the
    perpetual's premium ``p(t)`` (from funding, as ``market_data`` derives the index):
    ``r = 5% + 1095 * p(t) / 4`` (carry follows funding), ``index`` = the perpetual's index,
    ``mark = index * exp(r * tau)``, ``price = perp last / (1 + p(t)) * exp(r * tau)``; rounded to
    cents. Rows exist from listing (expiry - 182 days) until expiry, so the basis converges to 0.
    """
    assert inst.listed_ms is not None and inst.expiry_ms is not None
    series = md.hourly_series(md.native_symbol("binance-futures", inst.perpetual))
    out: list[_Row] = []
    for t, index, _mark, last in perpetual:
        if not inst.listed_ms <= t < inst.expiry_ms:
            continue
        observed = t + _MINUTE_MS
        premium = series.premium(observed)
        tau = (inst.expiry_ms - observed) / (365 * 86_400_000)
        growth = math.exp((BASE_CARRY + 1095 * premium / 4) * tau)
        out.append(
            (
                t,
                index,
                None if index is None else round(index * growth, 2),
                None if last is None else round(last / (1 + premium) * growth, 2),
            )
        )
    return out


SURFACE: dict[str, tuple[float, float]] = {"btc": (0.40, 0.50), "eth": (0.55, 0.65)}
"""Per coin the at-the-money volatility at expiry and long-dated (``surface_vol``)."""
SURFACE_DECAY_YEARS, SKEW, CURVATURE, Z_LIMIT = 0.25, -0.10, 0.04, 3.0


def surface_vol(
    coin: str, log_moneyness: NDArray[np.float64], years: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The emulator's known volatility surface, constant in time (README "Options")::

        atm(tau) = long + (short - long) * exp(-tau / 0.25)
        z = clip(ln(K / F) / sqrt(tau), -3, 3)
        vol = atm(tau) * (1 - 0.10 z + 0.04 z^2)

    a term structure rising from ``short`` to ``long`` and a put skew, as crypto smiles usually are."""
    short, long = SURFACE[coin]
    z = np.clip(log_moneyness / np.sqrt(years), -Z_LIMIT, Z_LIMIT)
    return (long + (short - long) * np.exp(-years / SURFACE_DECAY_YEARS)) * (1 + SKEW * z + CURVATURE * z * z)


def _option_rows(inst: Instrument, future: list[_Row]) -> list[_Row]:
    """An OKX option's minutes from its future's, priced on the surface, deterministically.

    At observation time ``t`` (the minute's end), ``F`` = the future's served mark, ``tau`` = years
    to expiry (365 days): ``mark`` = undiscounted Black-76 at ``surface_vol`` over ``F``, in the
    coin (divided by ``F``, OKX's quote), rounded to 1e-8 (at least 1e-8); ``index`` = the future's;
    ``price`` = one trade an hour, at the hour's first minute, at its mark rounded to OKX's tick of
    0.0001 coin (at least one tick); where the future has no mark (the data's last hour) the row keeps
    that trade alone. Put-call parity holds to the rounding: (call - put) * F = F - K."""
    assert inst.strike is not None and inst.expiry_ms is not None
    from scipy.special import ndtr

    rows = [r for r in future if r[2] is not None]
    t = np.array([r[0] for r in rows], dtype=np.int64)
    forward = np.array([r[2] for r in rows], dtype=np.float64)
    years = (inst.expiry_ms - t - _MINUTE_MS) / (365 * 86_400_000)
    moneyness = np.log(inst.strike / forward)
    total = surface_vol(inst.code[:3], moneyness, years) * np.sqrt(years)
    d1 = -moneyness / total + total / 2
    k = inst.strike / forward
    coin = ndtr(d1) - k * ndtr(d1 - total) if inst.is_call else k * ndtr(total - d1) - ndtr(-d1)
    marks = dict(zip(t.tolist(), np.maximum(np.round(coin, 8), 1e-8).tolist(), strict=True))
    out: list[_Row] = []
    trade = 0.0
    for ts, index, _, _ in future:  # a minute without a forward has no mark, and the last trade
        mark = marks.get(ts)
        if mark is not None and (ts % 3_600_000 == 0 or not trade):
            trade = max(round(mark, 4), 1e-4)
        if trade:
            out.append((ts, index, mark, trade))
    return out


def _last_minute_rows(minutes: list[_Row], width_ms: int) -> list[_Row]:
    """Coarse rows: per period (aligned to UTC midnight), each column's last non-null minute."""
    out: list[_Row] = []
    current: int | None = None
    values: list[float | None] = [None, None, None]
    for t, *cols in minutes:
        start = t - t % width_ms
        if start != current:
            if current is not None:
                out.append((current, values[0], values[1], values[2]))
            current, values = start, [None, None, None]
        for k, v in enumerate(cols):
            if v is not None:
                values[k] = v
    if current is not None:
        out.append((current, values[0], values[1], values[2]))
    return out


def _price(value: float | None) -> str:
    return "null" if value is None else f'"{value!r}"'


@lru_cache(maxsize=256)
@on_disk
def month_rows(inst: Instrument, interval: str, year: int, month: int) -> tuple[list[int], list[str]]:
    """Timestamps and JSON text of one instrument's rows for one calendar month (UTC)."""
    rows = _minute_rows(inst, year, month)
    if interval != "1m":
        rows = _last_minute_rows(rows, INTERVAL_MS[interval])
    return [r[0] for r in rows], [
        f'{{"timestamp":{t},"index_price":{_price(i)},"mark_price":{_price(m)},"price":{_price(p)}}}'
        for t, i, m, p in rows
    ]


@lru_cache(maxsize=64)
def _minute_rows(inst: Instrument, year: int, month: int) -> list[_Row]:
    first, last = md.data_bounds("binance-futures", inst.perpetual)
    lo = _ms(datetime(year, month, 1, tzinfo=UTC))
    if lo > _ms(last.replace(tzinfo=UTC)) or (year, month) < (first.year, first.month):
        return []
    if inst.expiry_ms is not None and inst.listed_ms is not None:
        hi = _ms(datetime(year, month, calendar.monthrange(year, month)[1], tzinfo=UTC) + timedelta(days=1))
        if hi <= inst.listed_ms or lo >= inst.expiry_ms:
            return []
    if inst.strike is not None:
        return _option_rows(inst, _minute_rows(inst.future, year, month))
    perpetual = _perpetual_minutes(inst.perpetual, year, month)
    return perpetual if inst.expiry_ms is None else _future_rows(inst, perpetual)


def _months(lo_ms: int, hi_ms: int, descending: bool) -> Iterator[tuple[int, int]]:
    lo = datetime.fromtimestamp(lo_ms / 1000, tz=UTC)
    hi = datetime.fromtimestamp((hi_ms - 1) / 1000, tz=UTC)
    months = []
    y, m = lo.year, lo.month
    while (y, m) <= (hi.year, hi.month):
        months.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return iter(reversed(months) if descending else months)


def select_rows(inst: Instrument, interval: str, lo: int, hi: int, descending: bool, limit: int) -> list[str]:
    """Up to ``limit`` rows' JSON with ``lo <= timestamp < hi``, in the order asked."""
    first, last = md.data_bounds("binance-futures", inst.perpetual)
    lo = max(lo, _ms(first.replace(tzinfo=UTC)) - 86_400_000)
    hi = min(hi, _ms(last.replace(tzinfo=UTC)) + 86_400_000)
    out: list[str] = []
    if hi <= lo or limit <= 0:
        return out
    for y, m in _months(lo, hi, descending):
        times, texts = month_rows(inst, interval, y, m)
        i, j = bisect.bisect_left(times, lo), bisect.bisect_left(times, hi)
        if descending:
            out.extend(reversed(texts[max(i, j - (limit - len(out))) : j]))
        else:
            out.extend(texts[i : min(j, i + limit - len(out))])
        if len(out) >= limit:
            break
    return out


# --------------------------------------------------------------------------------------------------
# The handler


def _with_non_finite(row: str, fault: Fault) -> str:
    """The value defect: the row's ``fault.field`` (a price string) reads "NaN", "Infinity" or the
    finite value (``repr``: 1e-320 stays 1e-320)."""
    parsed = json.loads(row)
    value = fault.value if fault.value is not None else float("nan")
    parsed[fault.field or "mark_price"] = (
        repr(value)
        if math.isfinite(value)
        else ("NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity"))
    )
    return json.dumps(parsed, separators=(",", ":"))


def kaiko_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Kaiko's error envelope."""
    return json_response(status, {"result": "error", "message": message}, headers)


def _parse_time(raw: str) -> int:
    value = datetime.fromisoformat(raw.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return _ms(value)


def _encode_token(state: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, object]:
    padded = token + "=" * (-len(token) % 4)
    state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    if not isinstance(state, dict):
        raise ValueError("not a continuation token")
    return state


class KaikoHandler(ApiOnlyHandler):
    """Serves Kaiko's ``derivatives.v2/price`` for one ``Emulator``."""

    api_prefix = API_PREFIX

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        # settable while running: the key's entitlement (epoch ms, None = open; nothing outside it
        # is served, and the envelope's access block says so), and whether pages carry ``result``
        # (Kaiko's guide says they do; its response example has none)
        self.access_range: tuple[int | None, int | None] = (None, None)
        self.send_result = True

    def status_response(self, target: str, status: int, retry_after: int | None) -> Response:
        headers = retry_after_header(retry_after)
        message = {
            429: "API rate limit reached",
            500: "Internal server error",
            503: "Service unavailable: scheduled maintenance",
        }.get(status, "Injected fault")
        return kaiko_error(status, message, headers)

    def handle(self, request: Request) -> Response:
        if request.path != PRICE_PATH:
            return kaiko_error(404, f"Unknown endpoint {request.path}")
        key = request.headers.get("X-Api-Key")
        if not key or key not in self.emu.api_keys:
            return kaiko_error(401, "Unauthorized: missing or invalid X-Api-Key header")
        accept = request.headers.get("Accept")
        if accept and not any(t in accept for t in ("application/json", "*/*", "application/*")):
            return kaiko_error(406, f"Not acceptable: {accept!r}; this endpoint answers application/json")
        token = request.param("continuation_token")
        try:
            state = _decode_token(token) if token else self._first_state(request)
        except (ValueError, binascii.Error) as exc:
            return kaiko_error(400, f"Invalid request: {exc}")
        exchange, klass, code = (
            str(state["exchange"]),
            str(state["instrument_class"]),
            str(state["instrument"]),
        )
        if (exchange, klass) not in SERVED:
            return kaiko_error(403, f"Your API key has no access to {klass} on exchange {exchange!r}")
        inst = find_instrument(exchange, klass, code)
        if inst is None:
            return kaiko_error(404, f"Instrument {code!r} ({klass}) not found on {exchange}")
        return self._page(request, inst, state, continued=bool(token))

    def _first_state(self, request: Request) -> dict[str, object]:
        problems = [
            f"missing required parameter {name}"
            for name in ("exchange", "instrument_class", "instrument")
            if not request.param(name)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        exchange = request.param("exchange") or ""
        klass = request.param("instrument_class") or ""
        if exchange not in KNOWN_EXCHANGES:
            raise ValueError(f"unknown exchange {exchange!r}")
        if klass not in CLASSES:
            raise ValueError(f"instrument_class must be one of {', '.join(CLASSES)}")
        interval = request.param("interval") or "1m"
        if interval not in INTERVAL_MS:
            raise ValueError(f"interval must be one of {', '.join(INTERVAL_MS)}")
        raw_size = request.param("page_size") or str(DEFAULT_PAGE_SIZE)
        if not raw_size.isdigit() or not 1 <= int(raw_size) <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}")
        sort = request.param("sort") or "desc"
        if sort not in ("asc", "desc"):
            raise ValueError("sort must be asc or desc")
        start_raw, end_raw = request.param("start_time"), request.param("end_time")
        try:
            start = _parse_time(start_raw) if start_raw else 0
            end = _parse_time(end_raw) if end_raw else _ms(datetime.now(UTC)) + 10 * 365 * 86_400_000
        except ValueError:
            raise ValueError(
                "start_time and end_time must be ISO 8601, e.g. 2025-01-01T00:00:00.000Z"
            ) from None
        if end <= start:
            raise ValueError("end_time must be after start_time")
        return {
            "exchange": exchange,
            "instrument_class": klass,
            "instrument": request.param("instrument") or "",
            "interval": interval,
            "page_size": int(raw_size),
            "sort": sort,
            "start": start,
            "end": end,
            "start_time": start_raw,
            "end_time": end_raw,
            "cursor": None,
        }

    def _page(
        self, request: Request, inst: Instrument, state: dict[str, object], *, continued: bool
    ) -> Response:
        interval, sort = str(state["interval"]), str(state["sort"])
        size = int(str(state["page_size"]))
        start, end = int(str(state["start"])), int(str(state["end"]))
        entitled_from, entitled_to = self.access_range
        start = max(start, entitled_from) if entitled_from is not None else start
        end = min(end, entitled_to) if entitled_to is not None else end
        cursor = state.get("cursor")
        descending = sort == "desc"
        lo, hi = start, end
        if cursor is not None:
            if descending:
                hi = int(str(cursor))
            else:
                lo = int(str(cursor))
        texts = select_rows(inst, interval, lo, hi, descending, size)
        fault = request.fault.kind if request.fault is not None else None
        next_url: str | None = None
        if len(texts) == size:  # a full page always gets a next_url, even if the next one is empty
            last_ts = int(texts[-1][len('{"timestamp":') :].split(",", 1)[0])
            token = _encode_token({**state, "cursor": last_ts if descending else last_ts + 1})
            next_url = f"{request.base_url}{PRICE_PATH}?continuation_token={token}"
        if fault == "repeat_next_url" and continued:
            next_url = f"{request.base_url}{request.raw_path}"  # the continuation just followed
        if fault in VALUE_FAULTS and texts:
            assert request.fault is not None
            texts = [_with_non_finite(texts[0], request.fault), *texts[1:]]
        if fault == "repeat_row" and continued:
            before = (
                select_rows(inst, interval, hi, end, False, 1)
                if descending
                else (select_rows(inst, interval, start, lo, True, 1))
            )
            texts = before + texts
        now = self.emu.clock.now()
        envelope: dict[str, object] = {
            "result": "success",
            "query": {
                "exchange": state["exchange"],
                "instrument_class": state["instrument_class"],
                "instrument": state["instrument"],
                "interval": interval,
                "page_size": size,
                "sort": sort,
                "start_time": state.get("start_time"),
                "end_time": state.get("end_time"),
                "data_version": "v2",
                "commodity": "derivatives",
                "request_time": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            },
            "time": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "timestamp": int(now.timestamp() * 1000),
            "data": "__DATA__",
            "access": {
                "access_range": {"start_timestamp": entitled_from, "end_timestamp": entitled_to},
                "data_range": {"start_timestamp": start, "end_timestamp": end},
            },
        }
        if next_url is not None:
            envelope["next_url"] = next_url
        if not self.send_result:
            del envelope["result"]
        body = json.dumps(envelope).replace('"__DATA__"', "[" + ",".join(texts) + "]", 1)
        return Response(200, body.encode(), "application/json")
