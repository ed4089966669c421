"""The report's smile and ATM term-structure charts draw the option marts' values: an hourly smile
priced by hand at known volatilities (tests/test_option_vol.py's), read back from the serving copy."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest

from pipelines.report import build_charts
from pipelines.report.data import read_report_data
from pipelines.warehouse.lake import Warehouse
from pipelines.warehouse.serving import publish_serving
from tests.test_option_vol import EXPIRY, FORWARD, FUTURE_ROW, INDEX, TS, YEARS, _key, _refresh, price
from tests.test_report import by_gid, legend_texts

SMILE = {80_000: 0.62, 85_000: 0.56, 90_000: 0.50, 95_000: 0.48, 100_000: 0.49}


def test_the_smile_and_atm_term_structure_charts_draw_the_marts_values(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    opt = {"venue": "okx-options", "ts": TS, "index_price": INDEX}
    rows = [FUTURE_ROW] + [
        {**opt, "instrument_key": _key(k, r), "mark_price": price(r == "C", FORWARD, k, YEARS, v) / FORWARD}
        for k, v in SMILE.items()
        for r in "CP"
    ]
    _refresh(warehouse, rows)
    serving = tmp_path / "serving.duckdb"
    with warehouse.writer() as con:
        publish_serving(con, serving)
    drawn = {
        c.name: c
        for c in build_charts(read_report_data(serving, start=date(2026, 3, 2), end=date(2026, 3, 2)))
    }
    curve = f"kaiko|okx-options|BTC|{EXPIRY}"
    smile = by_gid(drawn["vol_smile"], curve)
    # the out-of-the-money side of each strike, x = ln(K / F), y in percent
    assert list(smile.get_xdata()) == pytest.approx([math.log(k / FORWARD) for k in SMILE])
    assert list(smile.get_ydata()) == pytest.approx([100 * v for v in SMILE.values()], abs=1e-4)
    atm = by_gid(drawn["vol_term_structure"], f"kaiko|okx-options|BTC|{TS}")
    # one expiry, 24 days 23 hours out; 91,000 is 1/5 of the way from 90,000 (50 %) to 95,000 (48 %)
    assert list(atm.get_xdata()) == pytest.approx([YEARS * 365]) and list(atm.get_ydata()) == pytest.approx(
        [49.6]
    )
    for name in ("vol_smile", "vol_term_structure"):
        assert legend_texts(drawn[name]), name  # keyed, at 9 pt at least
