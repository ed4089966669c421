"""Black-76 implied volatility and greeks, vectorised over NumPy arrays, and the DuckDB function
``black76`` that ``sql/marts/fct_option_vol.sql`` calls (DuckDB has no normal CDF and no root finder).

Prices are undiscounted, in forward terms (the crypto convention, Deribit's and OKX's): a coin-quoted
premium times the forward, a USD-quoted premium as it is. The root is found on the total volatility
``s = vol * sqrt(years)`` of the price normalised by the forward, by SciPy's bracketing Chandrupatla
solver (``scipy.optimize.elementwise.find_root``): always converges inside the no-arbitrage bounds.
SciPy is imported where it is used: the Dagster definitions register ``black76`` to build the marts'
catalog and need not load it (0.35 s)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
from duckdb.func import PythonUDFType
from numpy.typing import NDArray

Array = NDArray[np.float64]
_BRACKET = (1e-10, 50.0)  # total volatility: from a price barely above intrinsic to one at the bound
_TOLERANCES = {"xatol": 1e-15, "xrtol": 1e-13, "fatol": 0.0, "frtol": 0.0}
_PDF = 1 / np.sqrt(2 * np.pi)
FIELDS = ("iv", "delta", "gamma", "vega", "theta")


def _normalised(s: Array, is_call: NDArray[np.bool_], moneyness: Array) -> Array:
    """The Black-76 price over the forward at total volatility ``s``; ``moneyness`` is strike/forward."""
    from scipy.special import ndtr

    d1 = (-np.log(moneyness) + s * s / 2) / s
    call = ndtr(d1) - moneyness * ndtr(d1 - s)
    return np.where(is_call, call, moneyness * ndtr(s - d1) - ndtr(-d1))  # not call - 1 + k: cancels


def black76(is_call: NDArray[np.bool_], forward: Array, strike: Array, years: Array, vol: Array) -> Array:
    """Undiscounted Black-76 price, in the forward's currency per unit of underlying."""
    return forward * _normalised(vol * np.sqrt(years), is_call, strike / forward)


def implied_vol(
    is_call: NDArray[np.bool_], forward: Array, strike: Array, years: Array, price: Array
) -> Array:
    """The annualised volatility whose Black-76 price is ``price``; NaN where none is (the price at
    or below intrinsic, at or above the forward for a call or the strike for a put, years <= 0)."""
    from scipy.optimize import elementwise

    is_call, forward, strike, years, price = np.broadcast_arrays(is_call, forward, strike, years, price)
    vol = np.full(forward.shape, np.nan)
    with np.errstate(all="ignore"):
        k, c = strike / forward, price / forward
        ok = (years > 0) & (forward > 0) & (strike > 0) & np.isfinite(c)
        intrinsic = np.maximum(np.where(is_call, forward - strike, strike - forward), 0)
        ok &= (price > intrinsic) & (price < np.where(is_call, forward, strike))  # as fct_option_vol
        if ok.any():
            # an in-the-money option solved as its out-of-the-money twin (put-call parity): the root
            # is then fitted to the time value, not to a price that is mostly intrinsic
            otm = np.where(is_call, k >= 1, k <= 1)
            as_call = otm == is_call
            c = np.where(otm, c, c - np.where(is_call, 1 - k, k - 1))
            res = elementwise.find_root(
                lambda s, call, m, target: _normalised(s, call, m) - target,
                _BRACKET,
                args=(as_call[ok], k[ok], c[ok]),
                tolerances=_TOLERANCES,
            )
            vol[ok] = np.where(res.success, res.x / np.sqrt(years[ok]), np.nan)
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
    price: pa.DoubleArray,
) -> pa.StructArray:
    args = [np.asarray(a.to_numpy(zero_copy_only=False)) for a in (forward, strike, years, price)]
    call = np.asarray(is_call.to_numpy(zero_copy_only=False), dtype=bool)
    vol = implied_vol(call, *args)
    with np.errstate(all="ignore"):
        values = [vol, *greeks(call, args[0], args[1], args[2], vol)]
    return pa.StructArray.from_arrays([pa.array(v, mask=~np.isfinite(v)) for v in values], names=list(FIELDS))


def register(con: duckdb.DuckDBPyConnection) -> None:
    """``black76(is_call, forward, strike, years, price)`` on ``con``: a struct of ``FIELDS``, each
    null where no volatility fits (a null argument gives a null struct). Once per connection."""
    if con.execute("select 1 from duckdb_functions() where function_name = 'black76'").fetchone():
        return
    double = duckdb.sqltype("double")
    con.create_function(
        "black76",
        _udf,
        [duckdb.sqltype("boolean"), double, double, double, double],
        duckdb.struct_type({f: double for f in FIELDS}),
        type=PythonUDFType.ARROW,
    )
