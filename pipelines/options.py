"""Black-76 implied volatility and greeks, vectorised over NumPy arrays, and the DuckDB function
``black76`` that ``sql/marts/fct_option_vol.sql`` calls (DuckDB has no normal CDF and no root finder).
Prices are undiscounted, in forward terms (Deribit's and OKX's convention): a coin-quoted premium
times the forward, a USD-quoted one as it is. SciPy (its normal CDF) is imported where it is used: the
Dagster definitions register ``black76`` to build the marts' catalog and need not load it (0.35 s)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
from duckdb.func import ARROW, SPECIAL
from numpy.typing import NDArray

Array = NDArray[np.float64]
_PDF = 1 / np.sqrt(2 * np.pi)
FIELDS = ("iv", "delta", "gamma", "vega", "theta", "iv_last")


def implied_vol(
    is_call: NDArray[np.bool_], forward: Array, strike: Array, years: Array, price: Array
) -> Array:
    """The annualised volatility whose Black-76 price is ``price``; NaN where none is (the price at
    or below intrinsic, at or above the forward for a call or the strike for a put, years <= 0).
    An in-the-money option is solved as its out-of-the-money twin (put-call parity): the root is fitted
    to the time value. The twin's ``ln p(s)`` rises and is concave in the total volatility ``s``, so
    Newton on ``ln p(s) - ln c`` from left of the root climbs to it monotonically and quadratically;
    a step out of the bracket known so far bisects. About 3 steps a mark (``bench/options.py``)."""
    from scipy.special import ndtr

    is_call, forward, strike, years, price = np.broadcast_arrays(is_call, forward, strike, years, price)
    vol = np.full(forward.shape, np.nan)
    with np.errstate(all="ignore"):
        k, c = strike / forward, price / forward
        ok = (years > 0) & (forward > 0) & (strike > 0) & (price > (forward - strike) * (2 * is_call - 1))
        otm = np.where(is_call, k >= 1, k <= 1)
        c = np.where(otm, c, c - np.where(is_call, 1 - k, k - 1))
        # the out-of-the-money twin as a call on strike x = max(k, 1/k) >= 1: a put's normalised
        # price at k is k times a call's at 1/k (Black-76's put-call symmetry)
        as_put = otm != is_call
        x, c = np.where(as_put, 1 / k, k), np.where(as_put, c / k, c)
        # above intrinsic, and 0 < c < 1: a time value floats resolve, below the forward (call) or strike (put)
        idx = np.flatnonzero(ok & (c > 0) & (c < 1))
        x, c, a, target = x[idx], c[idx], np.log(x[idx]), np.log(c[idx])
        lo, hi = np.zeros(idx.size), np.full(idx.size, np.inf)
        # start: Corrado and Miller's approximation (within 1 % near the money, mostly left of the
        # root), and for a deep out-of-the-money price, where it fails, ln p ~ -(ln x / s)^2 / 2
        h = c - (1 - x) / 2
        s = np.sqrt(2 * np.pi) / (1 + x) * (h + np.sqrt(np.maximum(h * h - (1 - x) ** 2 / np.pi, 0)))
        s = np.maximum(s, a / np.sqrt(-2 * target))
        for _ in range(100):  # the rows not converged by then: no fit
            d1 = s / 2 - a / s
            p = ndtr(d1) - x * ndtr(d1 - s)
            f = np.log(p) - target
            lo, hi = np.where(f < 0, s, lo), np.where(f > 0, s, hi)
            new = s - f * p / (_PDF * np.exp(-d1 * d1 / 2))  # f / f', f' = vega / p
            new = np.where((new > lo) & (new < hi), new, np.where(np.isfinite(hi), (lo + hi) / 2, 2 * s))
            done = (np.abs(new - s) <= 1e-12 * s) | (f == 0) | (hi - lo <= 1e-12 * s)
            vol[idx[done]] = new[done] / np.sqrt(years[idx[done]])  # converged rows leave the working set
            idx, x, a, target, lo, hi, s = (v[~done] for v in (idx, x, a, target, lo, hi, new))
            if not idx.size:
                break
    return vol


def greeks(
    is_call: NDArray[np.bool_], forward: Array, strike: Array, years: Array, vol: Array
) -> tuple[Array, Array, Array, Array]:
    """(delta, gamma, vega, theta) of the undiscounted Black-76 price per unit of underlying: delta
    to the forward, gamma per unit of forward, vega per volatility point (0.01), theta per calendar
    day (365 a year), the conventions Deribit and OKX publish."""
    from scipy.special import ndtr

    root = np.sqrt(years)
    d1 = (np.log(forward / strike) + vol * vol * years / 2) / (vol * root)
    pdf = _PDF * np.exp(-d1 * d1 / 2)
    delta = np.where(is_call, ndtr(d1), ndtr(d1) - 1)
    gamma = pdf / (forward * vol * root)
    vega = forward * pdf * root / 100
    theta = -forward * pdf * vol / (2 * root) / 365
    return delta, gamma, vega, theta


def _udf(
    is_call: pa.BooleanArray,
    forward: pa.DoubleArray,
    strike: pa.DoubleArray,
    years: pa.DoubleArray,
    mark: pa.DoubleArray,
    last: pa.DoubleArray,
) -> pa.StructArray:
    """The mark's and the last's volatility in one solve over both (a null is NaN: no fit)."""
    args = (is_call, forward, strike, years, mark, last)
    call, f, k, y, m, t = (np.asarray(a.to_numpy(zero_copy_only=False)) for a in args)
    call = call.astype(bool)  # an object array where DuckDB sent a null
    two = [np.concatenate([v, v]) for v in (f, k, y)]  # every row twice: its mark, then its last
    both = implied_vol(np.concatenate([call, call]), two[0], two[1], two[2], np.concatenate([m, t]))
    vol = both[: len(f)]
    with np.errstate(all="ignore"):
        values = [vol, *greeks(call, f, k, y, vol), both[len(f) :]]
    return pa.StructArray.from_arrays([pa.array(v, mask=~np.isfinite(v)) for v in values], names=list(FIELDS))


def register(con: duckdb.DuckDBPyConnection) -> None:
    """``black76(is_call, forward, strike, years, mark, last)`` on ``con``: a struct of ``FIELDS``
    (the greeks are the mark's), each null where no volatility fits. One Arrow call for both prices
    halves the per-batch cost (DuckDB hands 2,048 rows at a time). Once per connection."""
    if con.execute("select 1 from duckdb_functions() where function_name = 'black76'").fetchone():
        return
    double, returns = duckdb.sqltype("double"), duckdb.struct_type({f: "double" for f in FIELDS})
    con.create_function(
        "black76", _udf, ["boolean", *[double] * 5], returns, type=ARROW, null_handling=SPECIAL
    )
