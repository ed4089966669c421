"""Vendor-format price series built from the shipped real sample.

What is real, derived and synthetic (see README.md in this folder):

* 1h: real Binance last and mark 1h klines (open = first, close = final of the interval).
* index price: Binance's index is not in the data, so it is derived deterministically from the
  real mark and funding: premium ``p(t) = funding_rate - 0.0001`` linearly interpolated in time
  between consecutive funding events (flat beyond the first/last event), and
  ``index(t) = mark(t) / (1 + p(t))``.
* 4h, 1d: aggregated from the real 1h rows, buckets aligned to UTC midnight.
* 1m: synthetic, a deterministic Brownian bridge (in log price) inside each real hour from its open
  to its close, so minute 59 closes exactly at the real hourly close; 5m/15m/30m aggregate the 1m.

Every function here is pure (results depend only on the arguments and the shipped sample) and
cached (the month tables also on disk, between processes: ``disk_cache``), so the server and tests
can call them freely.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.emulator.disk_cache import on_disk
from pipelines.sources.aperiodic.source import (
    BASIS_COLUMNS,
    FUNDING_COLUMNS,
    OPEN_INTEREST_COLUMNS,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
KLINES_PATH = DATA_DIR / "binance_usdm_1h.parquet"
FUNDING_PATH = DATA_DIR / "binance_usdm_funding.parquet"

EXCHANGES: tuple[str, ...] = ("binance-futures", "okx-perps", "hyperliquid-perps")
"""Exchanges the vendor documents. Only binance-futures has data in the emulator."""

SYMBOLS: dict[str, dict[str, str]] = {
    "binance-futures": {
        "perpetual-BTC-USDT:USDT": "BTCUSDT",
        "perpetual-ETH-USDT:USDT": "ETHUSDT",
    },
    "okx-perps": {},
    "hyperliquid-perps": {},
}
"""Atlas symbol -> exchange-native symbol in the sample, per exchange."""

TIMESTAMP_TYPES: tuple[str, ...] = ("exchange", "true")
INTERVALS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
"""Served intervals and their length in milliseconds."""

PRICE_COLUMNS: tuple[str, ...] = ("last_price", "index_price", "mark_price")
RATIO_COLUMNS: tuple[str, ...] = (
    "mark_index_pct_change_ratio",
    "mark_last_pct_change_ratio",
    "index_last_pct_change_ratio",
)
COLUMNS: tuple[str, ...] = (
    "time",
    *PRICE_COLUMNS,
    "last_price_pct_change",
    "index_price_pct_change",
    "mark_price_pct_change",
    *RATIO_COLUMNS,
)
SCHEMA = pa.schema(
    [pa.field("time", pa.timestamp("us"))] + [pa.field(name, pa.float64()) for name in COLUMNS[1:]]
)
"""``time`` is naive timestamp[us] (UTC implied): the official client compares it with naive
datetimes in polars, which raises on a tz-aware column."""

INTEREST_RATE = 0.0001
"""Binance's fixed 0.01% interest component: funding ≈ premium + interest."""

# Synthetic 1m: per-minute log-price volatility per symbol, and how strongly the last and mark
# paths share their shocks (real Binance mark and last differ by about a basis point).
_MINUTE_VOL: dict[str, float] = {"BTCUSDT": 0.0006, "ETHUSDT": 0.0008}
_LAST_MARK_CORRELATION = 0.995
_HOUR_MS = 3_600_000
_MINUTE_MS = 60_000


@dataclass(frozen=True)
class HourlySeries:
    """Real 1h rows for one symbol, as plain lists (fast to index from Python)."""

    times: list[int]  # open time, epoch ms UTC
    last_open: list[float | None]
    last_close: list[float | None]
    mark_open: list[float | None]
    mark_close: list[float | None]
    funding_times: list[int]
    funding_rates: list[float]

    def premium(self, t_ms: int) -> float:
        """Premium implied by funding at ``t_ms``: (rate - interest), linear between events."""
        ft, fr = self.funding_times, self.funding_rates
        i = bisect.bisect_right(ft, t_ms)
        if i == 0:
            rate = fr[0]
        elif i == len(ft):
            rate = fr[-1]
        else:
            t0, t1 = ft[i - 1], ft[i]
            rate = fr[i - 1] + (fr[i] - fr[i - 1]) * (t_ms - t0) / (t1 - t0)
        return rate - INTEREST_RATE

    def index_from_mark(self, mark: float | None, t_ms: int) -> float | None:
        """index(t) = mark(t) / (1 + p(t))."""
        return None if mark is None else mark / (1.0 + self.premium(t_ms))


# One row of first/final values per price type, before the vendor columns are computed.
# (time_ms, last_first, last_final, index_first, index_final, mark_first, mark_final)
_Row = tuple[int, float | None, float | None, float | None, float | None, float | None, float | None]

_load_lock = threading.Lock()


@cache
def _sample_tables() -> tuple[pa.Table, pa.Table]:
    return pq.read_table(KLINES_PATH), pq.read_table(FUNDING_PATH)


def _epoch_ms(column: pa.ChunkedArray) -> list[int]:
    return column.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist()


@cache
def _hourly_series_cached(native_symbol: str) -> HourlySeries:
    klines, funding = _sample_tables()
    k = klines.filter(pc.equal(klines["symbol"], native_symbol)).sort_by("open_time")
    f = funding.filter(pc.equal(funding["symbol"], native_symbol)).sort_by("calc_time")
    if k.num_rows == 0 or f.num_rows == 0:
        raise KeyError(f"no sample data for {native_symbol}")
    return HourlySeries(
        times=_epoch_ms(k["open_time"]),
        last_open=k["last_open"].to_pylist(),
        last_close=k["last_close"].to_pylist(),
        mark_open=k["mark_open"].to_pylist(),
        mark_close=k["mark_close"].to_pylist(),
        funding_times=_epoch_ms(f["calc_time"]),
        funding_rates=f["last_funding_rate"].to_pylist(),
    )


def hourly_series(native_symbol: str) -> HourlySeries:
    """The real hourly sample for a native symbol (``BTCUSDT``), loaded once per process."""
    with _load_lock:  # the server's threads would otherwise all load it on the first burst
        return _hourly_series_cached(native_symbol)


def native_symbol(exchange: str, symbol: str) -> str:
    """Map an Atlas symbol to the sample's native symbol; KeyError when the emulator has no data."""
    return SYMBOLS[exchange][symbol]


def data_bounds(exchange: str, symbol: str) -> tuple[datetime, datetime]:
    """First and last hour open (naive UTC) with any data for the symbol."""
    series = hourly_series(native_symbol(exchange, symbol))
    return _ms_to_naive(series.times[0]), _ms_to_naive(series.times[-1])


def _ms_to_naive(t_ms: int) -> datetime:
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).replace(tzinfo=None)


def _to_ms(value: datetime | date) -> int:
    """Epoch ms of a datetime (naive = UTC) or a date (its UTC midnight)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


# --------------------------------------------------------------------------------------------------
# Row construction


def _hour_rows(series: HourlySeries, lo: int, hi: int) -> list[_Row]:
    """Real 1h rows for hour opens in [lo, hi)."""
    i0 = bisect.bisect_left(series.times, lo)
    i1 = bisect.bisect_left(series.times, hi)
    rows: list[_Row] = []
    for i in range(i0, i1):
        t = series.times[i]
        mo, mc = series.mark_open[i], series.mark_close[i]
        rows.append(
            (
                t,
                series.last_open[i],
                series.last_close[i],
                series.index_from_mark(mo, t),
                series.index_from_mark(mc, t + _HOUR_MS),
                mo,
                mc,
            )
        )
    return rows


def _hour_seed(native: str, hour_ms: int) -> int:
    digest = hashlib.sha256(f"aperiodic-emulator|{native}|{hour_ms}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _bridge(first: float, final: float, shocks: Sequence[float], sigma: float) -> list[float]:
    """61 minute-boundary prices from ``first`` to ``final`` (both exact) along a log Brownian bridge."""
    n = len(shocks)
    walk = [0.0] * (n + 1)
    acc = 0.0
    for k, z in enumerate(shocks, start=1):
        acc += sigma * z
        walk[k] = acc
    log_first, drift = math.log(first), math.log(final) - math.log(first)
    end = walk[n]
    points = [first]
    for k in range(1, n):
        frac = k / n
        points.append(math.exp(log_first + frac * drift + walk[k] - frac * end))
    points.append(final)  # exact: the real close, not exp(log(close))
    return points


def _minute_rows_for_hour(series: HourlySeries, native: str, i: int) -> list[_Row]:
    """Sixty synthetic 1m rows anchored to real hour ``i`` (open and close exact)."""
    t = series.times[i]
    rng = random.Random(_hour_seed(native, t))  # own generator: no global RNG state
    sigma = _MINUTE_VOL.get(native, 0.0007)
    rho = _LAST_MARK_CORRELATION
    rho_c = math.sqrt(1.0 - rho * rho)
    last_shocks: list[float] = []
    mark_shocks: list[float] = []
    for _ in range(60):  # draw order fixed: common, last, mark
        common = rng.gauss(0.0, 1.0)
        last_shocks.append(rho * common + rho_c * rng.gauss(0.0, 1.0))
        mark_shocks.append(rho * common + rho_c * rng.gauss(0.0, 1.0))
    lo, lc, mo, mc = series.last_open[i], series.last_close[i], series.mark_open[i], series.mark_close[i]
    last = _bridge(lo, lc, last_shocks, sigma) if lo is not None and lc is not None else None
    mark = _bridge(mo, mc, mark_shocks, sigma) if mo is not None and mc is not None else None
    index: list[float] | None = None
    if mark is not None:
        # p(t) is linear inside an hour (funding events fall on hour boundaries), but compute it
        # through the same function as the hourly rows so minute 59 matches the hour exactly.
        index = [m / (1.0 + series.premium(t + k * _MINUTE_MS)) for k, m in enumerate(mark)]
    rows: list[_Row] = []
    for m in range(60):
        rows.append(
            (
                t + m * _MINUTE_MS,
                last[m] if last else None,
                last[m + 1] if last else None,
                index[m] if index else None,
                index[m + 1] if index else None,
                mark[m] if mark else None,
                mark[m + 1] if mark else None,
            )
        )
    return rows


def _aggregate(rows: list[_Row], width_ms: int) -> list[_Row]:
    """Group rows into UTC-midnight-aligned buckets: first of the first row, final of the last."""
    out: list[_Row] = []
    bucket: list[_Row] = []
    current: int | None = None

    def flush() -> None:
        if not bucket or current is None:
            return
        values: list[float | None] = []
        for col in range(1, 7, 2):  # (first, final) pairs per price type
            firsts = [r[col] for r in bucket if r[col] is not None]
            finals = [r[col + 1] for r in bucket if r[col + 1] is not None]
            values.append(firsts[0] if firsts else None)
            values.append(finals[-1] if finals else None)
        out.append((current, values[0], values[1], values[2], values[3], values[4], values[5]))

    for row in rows:
        start = row[0] - row[0] % width_ms
        if start != current:
            flush()
            bucket = []
            current = start
        bucket.append(row)
    flush()
    return out


def _pct(first: pa.Array, final: pa.Array) -> pa.Array:
    """(final / first - 1) * 100; null when either side is null or first is 0."""
    ratio = _safe_divide(final, first)
    return pc.multiply(pc.subtract(ratio, 1.0), 100.0)


def _safe_divide(num: pa.Array, den: pa.Array) -> pa.Array:
    """num / den, null (never inf/NaN) when either is null or den is 0."""
    zero = pc.equal(den, 0.0)
    return pc.if_else(pc.fill_null(zero, True), pa.scalar(None, pa.float64()), pc.divide(num, den))


def _rows_to_table(rows: list[_Row]) -> pa.Table:
    time = pa.array([r[0] * 1000 for r in rows], pa.int64()).cast(pa.timestamp("us"))
    lf, ll, xf, xl, mf, ml = (pa.array([r[k] for r in rows], pa.float64()) for k in range(1, 7))
    last_pct = _pct(lf, ll)
    index_pct = _pct(xf, xl)
    mark_pct = _pct(mf, ml)
    return pa.Table.from_arrays(
        [
            time,
            ll,
            xl,
            ml,
            last_pct,
            index_pct,
            mark_pct,
            _safe_divide(mark_pct, index_pct),
            _safe_divide(mark_pct, last_pct),
            _safe_divide(index_pct, last_pct),
        ],
        schema=SCHEMA,
    )


# --------------------------------------------------------------------------------------------------
# Cached building blocks: whole UTC months, so files and ad-hoc ranges share the work.


def _month_range_ms(year: int, month: int) -> tuple[int, int]:
    nxt = (year + 1, 1) if month == 12 else (year, month + 1)
    return _to_ms(date(year, month, 1)), _to_ms(date(nxt[0], nxt[1], 1))


@lru_cache(maxsize=256)
@on_disk
def _month_table(native: str, interval: str, year: int, month: int) -> pa.Table:
    series = hourly_series(native)
    lo, hi = _month_range_ms(year, month)
    width = INTERVALS[interval]
    if width >= _HOUR_MS:
        rows = _hour_rows(series, lo, hi)
        if width > _HOUR_MS:
            rows = _aggregate(rows, width)
    else:
        i0 = bisect.bisect_left(series.times, lo)
        i1 = bisect.bisect_left(series.times, hi)
        rows = []
        for i in range(i0, i1):
            rows.extend(_minute_rows_for_hour(series, native, i))
        if width > _MINUTE_MS:
            rows = _aggregate(rows, width)
    return _rows_to_table(rows)


def _months_between(lo_ms: int, hi_ms: int) -> list[tuple[int, int]]:
    start = _ms_to_naive(lo_ms)
    end = _ms_to_naive(hi_ms - 1)
    y, m = start.year, start.month
    out = []
    while (y, m) <= (end.year, end.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def validate(exchange: str, symbol: str, interval: str, timestamp_type: str) -> str:
    """Check a request against what the emulator serves; return the native symbol."""
    if exchange not in SYMBOLS:
        raise ValueError(f"unknown exchange {exchange!r}; known: {', '.join(EXCHANGES)}")
    if symbol not in SYMBOLS[exchange]:
        raise KeyError(f"no data for symbol {symbol!r} on {exchange}")
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; known: {', '.join(INTERVALS)}")
    if timestamp_type not in TIMESTAMP_TYPES:
        raise ValueError(f"unknown timestamp type {timestamp_type!r}; known: exchange, true")
    return SYMBOLS[exchange][symbol]


def derivative_price_table(
    exchange: str,
    symbol: str,
    interval: str,
    timestamp_type: str,
    start: datetime | date,
    end: datetime | date,
) -> pa.Table:
    """Aperiodic ``derivative_price`` rows with ``start <= time < end`` (naive datetimes = UTC).

    ``timestamp_type`` "true" (arrival time) serves the same rows as "exchange": the sample has
    only exchange times, and the emulator does not invent an arrival delay.
    Raises ValueError for an unknown exchange/interval/timestamp type, KeyError for an unknown
    symbol.
    """
    native = validate(exchange, symbol, interval, timestamp_type)
    lo, hi = _to_ms(start), _to_ms(end)
    if hi <= lo:
        return SCHEMA.empty_table()
    parts = [_month_table(native, interval, y, m) for y, m in _months_between(lo, hi)]
    table = pa.concat_tables(parts) if parts else SCHEMA.empty_table()
    t = table["time"]
    mask = pc.and_(
        pc.greater_equal(t, pa.scalar(lo * 1000, pa.timestamp("us"))),
        pc.less(t, pa.scalar(hi * 1000, pa.timestamp("us"))),
    )
    return table.filter(mask).combine_chunks()


# --------------------------------------------------------------------------------------------------
# Funding, open interest and basis: Aperiodic's catalog layouts (vendor-docs/aperiodic-derivatives-catalog.md),
# one row per interval with price data, each column a statistic of the interval's minutes; a listing
# for an exchange a metric's page does not list is answered 400 (METRIC_VENUES)

OPEN_INTEREST_LEVEL: dict[str, float] = {"BTCUSDT": 80_000.0, "ETHUSDT": 2_000_000.0}
"""Typical Binance open interest in coins (the real data has none): the derived series' level."""
_OI_WAVE_MS = 17 * 86_400_000
_OI_WAVE = 0.12
_OI_NOISE = 0.02


def _interval_starts(series: HourlySeries, lo: int, hi: int, width: int) -> list[int]:
    """Starts of the intervals in [lo, hi) that hold at least one hour of price data."""
    starts: set[int] = set()
    for t in series.times[bisect.bisect_left(series.times, lo) : bisect.bisect_left(series.times, hi)]:
        starts.update([t - t % width] if width >= _HOUR_MS else range(t, t + _HOUR_MS, width))
    return sorted(s for s in starts if lo <= s < hi)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _std(values: list[float]) -> float | None:
    """Population standard deviation (0 for one value, null for none)."""
    if not values:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _ratio(num: float | None, den: float | None, scale: float = 1.0) -> float | None:
    return None if num is None or not den else num / den * scale


def _metric_table(
    columns: tuple[str, ...], times: list[int], rows: Sequence[tuple[float | None, ...]]
) -> pa.Table:
    time = pa.array([t * 1000 for t in times], pa.int64()).cast(pa.timestamp("us"))
    values = [pa.array([r[k] for r in rows], pa.float64()) for k in range(len(columns))]
    return pa.Table.from_arrays([time, *values], names=["time", *columns])


def funding_table(
    exchange: str,
    symbol: str,
    interval: str,
    timestamp_type: str,
    start: datetime | date,
    end: datetime | date,
) -> pa.Table:
    """Aperiodic ``funding`` rows, ``start <= time < end``, from the minutes ``m`` of each interval
    (its starts): ``funding_rate(m)`` = the real rate of the last settlement at or before ``m``
    (untouched), ``predicted(m)`` = ``p(m) + 0.0001``, the premium-implied rate that reaches the next
    settled rate at its settlement. Last values, the spread's mean and the standard deviations are
    over the interval's minutes; funding_rate updates once per settlement in the interval, the
    prediction every minute."""
    native = validate(exchange, symbol, interval, timestamp_type)
    series = hourly_series(native)
    lo, hi, width = _to_ms(start), _to_ms(end), INTERVALS[interval]
    times, rows = _interval_starts(series, lo, hi, width), []
    ft, fr = series.funding_times, series.funding_rates
    for t in times:
        minutes = range(t, t + width, _MINUTE_MS)
        rates = [fr[max(bisect.bisect_right(ft, m) - 1, 0)] for m in minutes]
        predicted = [series.premium(m) + INTEREST_RATE for m in minutes]
        spreads = [p - r for p, r in zip(predicted, rates, strict=True)]
        spread_bps = [s / abs(r) * 1e4 for s, r in zip(spreads, rates, strict=True) if r]
        updates = bisect.bisect_left(ft, t + width) - bisect.bisect_left(ft, t)
        rows.append(
            (
                rates[-1],
                predicted[-1],
                spreads[-1],
                _ratio(spreads[-1], abs(rates[-1]), 1e4),
                _mean(spreads),
                _std(predicted),
                _std(spread_bps),
                updates / (width / 1000),
                width / 1000 / updates if updates else None,
                1 / 60,
            )
        )
    return _metric_table(FUNDING_COLUMNS, times, rows)


def open_interest_at(native: str, t_ms: int) -> float:
    """Derived open interest (coins) at minute ``t_ms``: the symbol's level on a slow 17-day wave,
    times a small per-minute jitter from SHA-256 of (symbol, minute); rounded to 0.001 coin like
    Binance. Deterministic, and the global RNG is untouched."""
    digest = hashlib.sha256(f"aperiodic-emulator-oi|{native}|{t_ms}".encode()).digest()
    jitter = int.from_bytes(digest[:8], "big") / 2**64 * 2.0 - 1.0
    wave = math.sin(2.0 * math.pi * t_ms / _OI_WAVE_MS)
    level = OPEN_INTEREST_LEVEL.get(native, 10_000.0)
    return round(level * (1.0 + _OI_WAVE * wave) * (1.0 + _OI_NOISE * jitter), 3)


def open_interest_table(
    exchange: str,
    symbol: str,
    interval: str,
    timestamp_type: str,
    start: datetime | date,
    end: datetime | date,
) -> pa.Table:
    """Aperiodic ``open_interest`` rows, ``start <= time < end``: the derived open interest at the
    interval's last minute, its pct change from the first minute's, the standard deviation of its
    minute-to-minute pct changes (null with one minute), and its pct change / the interval's
    ``mark_price_pct_change`` (null where that is 0 or null)."""
    native = validate(exchange, symbol, interval, timestamp_type)
    series = hourly_series(native)
    lo, hi, width = _to_ms(start), _to_ms(end), INTERVALS[interval]
    times, rows = _interval_starts(series, lo, hi, width), []
    prices = derivative_price_table(exchange, symbol, interval, timestamp_type, start, end)
    mark_pct = dict(zip(_epoch_ms(prices["time"]), prices["mark_price_pct_change"].to_pylist(), strict=True))
    for t in times:
        values = [open_interest_at(native, m) for m in range(t, t + width, _MINUTE_MS)]
        pct = _ratio(values[-1] - values[0], values[0], 100.0)
        changes = [(b / a - 1) * 100 for a, b in itertools.pairwise(values) if a]
        rows.append((values[-1], pct, _std(changes) if changes else None, _ratio(pct, mark_pct.get(t))))
    return _metric_table(OPEN_INTEREST_COLUMNS, times, rows)


def basis_table(
    exchange: str,
    symbol: str,
    interval: str,
    timestamp_type: str,
    start: datetime | date,
    end: datetime | date,
) -> pa.Table:
    """Aperiodic ``basis`` rows, ``start <= time < end``, from the 1m ``derivative_price`` finals of
    each interval's minutes that have mark and index (and last, for the spread): the last mark − index
    (= the interval's own final mark − final index, as the 1m series ends on them) and in bps of the
    index, the last mark − last and in bps of last, their means, and the population standard
    deviations of the bps. Null where the interval has no such minute."""
    validate(exchange, symbol, interval, timestamp_type)
    width = INTERVALS[interval]
    minutes = derivative_price_table(exchange, symbol, "1m", timestamp_type, start, end)
    last, index, mark = (minutes[c].to_pylist() for c in ("last_price", "index_price", "mark_price"))
    groups: dict[int, list[tuple[float, float]]] = {}  # interval start -> (basis, bps) per minute
    spreads: dict[int, list[tuple[float, float]]] = {}  # interval start -> (spread, bps) per minute
    for t, lp, ip, mp in zip(_epoch_ms(minutes["time"]), last, index, mark, strict=True):
        got, spread = groups.setdefault(t - t % width, []), spreads.setdefault(t - t % width, [])
        if ip is not None and mp is not None:
            got.append((mp - ip, (mp - ip) / ip * 1e4))
        if lp is not None and mp is not None:
            spread.append((mp - lp, (mp - lp) / lp * 1e4))
    rows = []
    for t in sorted(groups):
        got, spread = groups[t], spreads[t]
        rows.append(
            (
                *(got[-1] if got else (None, None)),
                *(spread[-1] if spread else (None, None)),
                _mean([b for b, _ in got]),
                _std([bps for _, bps in got]),
                _mean([s for s, _ in spread]),
                _std([bps for _, bps in spread]),
            )
        )
    return _metric_table(BASIS_COLUMNS, sorted(groups), rows)


METRIC_TABLES = {
    "derivative_price": derivative_price_table,
    "funding": funding_table,
    "open_interest": open_interest_table,
    "basis": basis_table,
}
"""Aperiodic derivative metric -> the function building its rows."""
