"""``python -m bench.options`` (part of ``make bench``): one month of the emulator's 1m OKX option
marks through ``marts.fct_option_vol`` against the time DuckDB takes to scan them once (issue 29:
under 2x). Loads April 2026 of 20 BTC options (10 strikes x call/put on the 26 June quarterly, alive
the whole month) and their future from the embedded emulator into a temporary lake, then times, in
one process, medians of ``--runs``:

- scan: the option rows' columns the mart reads, from ``marts.fct_price_interval``, into a temporary
  table (every interval the mart covers: 1m and its rollups);
- mart: ``fct_option_vol``'s delete + insert for the month, as ``refresh_marts`` does;
- the mart with ``black76`` swapped for an Arrow function that returns nulls (the SQL alone), and
  ``implied_vol`` + ``greeks`` over the same marks as whole NumPy arrays (the solver alone).

Wall and CPU seconds (the process's, over DuckDB's threads); writes the section "Options" of
``docs/benchmarks.md``."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from duckdb.func import PythonUDFType

from bench.__main__ import REPO, machine
from pipelines import options
from pipelines.emulator.server import Emulator
from pipelines.models import _finite_columns, build_views, mart_models, refresh_marts
from pipelines.reference import Reference, VendorName
from pipelines.sources.kaiko.client import KaikoClient
from pipelines.sources.kaiko.load import Series, load_months
from pipelines.sources.kaiko.source import to_kaiko, with_expiry
from pipelines.universe.instruments import parse_instrument
from pipelines.warehouse.lake import Warehouse

SECTION = "## Options (issue 29)"
MONTH, END = date(2026, 4, 1), date(2026, 5, 1)
FUTURE = "future-BTC-USD:BTC-20260626"
KEYS = [FUTURE] + [
    f"option-BTC-USD:BTC-20260626-{k}-{r}" for k in range(60_000, 110_000, 5_000) for r in "CP"
]
RATIO_MAX = 2.0
OPTION_ROWS = (
    "from marts.fct_price_interval where ts >= $start and ts < $end and instrument_key like 'option-%'"
)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(runs: int, work: Callable[[], object]) -> tuple[float, float]:
    """Median wall and CPU seconds of ``runs`` calls."""
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), _cpu()
        work()
        wall.append(time.perf_counter() - t)
        cpu.append(_cpu() - c)
    return statistics.median(wall), statistics.median(cpu)


def load(lake: Path) -> None:
    """April 2026 of ``KEYS`` at 1m from the embedded emulator, and the marts built once."""
    venues = [("okx-futures" if k.startswith("future") else "okx-options", k) for k in KEYS]
    universe = [parse_instrument({"venue": v, "symbol": k}, "bench", (v,)) for v, k in venues]
    universe = [replace(u, instrument=with_expiry("okex", u.instrument)) for u in universe]
    codes = [to_kaiko(u.venue, u.instrument) for u in universe]
    names = [
        VendorName("kaiko", c.exchange, c.instrument_class, c.instrument, u.venue, u.instrument_key)
        for u, c in zip(universe, codes, strict=True)
    ]
    series = [Series(u.venue, u.instrument_key, c, "1m") for u, c in zip(universe, codes, strict=True)]
    warehouse = Warehouse(lake)
    with Emulator() as emu:
        client = KaikoClient(emu.base_url("kaiko"), emu.api_key)
        load_months(
            client, warehouse, series, [MONTH], progress=lambda _: None, reference=Reference(universe, names)
        )
    with warehouse.writer(holder="bench.options") as con:
        refresh_marts(con, [MONTH])


def _nulls(
    call: pa.Array, forward: pa.Array, strike: pa.Array, years: pa.Array, mark: pa.Array, last: pa.Array
) -> pa.StructArray:
    """``black76``'s shape, all null: the SQL without the solve."""
    return pa.StructArray.from_arrays(
        [pa.nulls(len(call), pa.float64())] * len(options.FIELDS), names=list(options.FIELDS)
    )


def measure(lake: Path, runs: int) -> dict[str, float]:
    out: dict[str, float] = {}
    model = next(m for m in mart_models() if m.name == "fct_option_vol")
    window = {"window_start": MONTH, "window_end": END}
    with Warehouse(lake).writer(holder="bench.options") as con:
        build_views(con)
        params = {"start": MONTH, "end": END}
        out["rows"] = con.execute(f"select count(*) {OPTION_ROWS}", params).fetchone()[0]  # type: ignore[index]
        out["minutes"] = con.execute(f"select count(*) {OPTION_ROWS} and interval = '1m'", params).fetchone()[
            0
        ]  # type: ignore[index]
        columns = "vendor, venue, instrument_key, interval, ts, mark_price, last_price, index_price"

        def scan() -> None:
            con.execute(f"create or replace temp table scanned as select {columns} {OPTION_ROWS}", params)

        finite = _finite_columns(con, model.relation)

        def mart() -> None:
            con.execute("begin")
            con.execute(
                f"delete from {model.relation} where ts >= $window_start::timestamptz and ts < $window_end::timestamptz",
                window,
            )
            con.execute(f"insert into {model.relation} by name select {finite} from ({model.sql})", window)
            con.execute("commit")

        out["scan_s"], out["scan_cpu"] = timed(runs, scan)
        out["mart_s"], out["mart_cpu"] = timed(runs, mart)
        # the floor of any stored mart: its month's rows, already computed, written again
        con.execute(
            f"create or replace temp table written as select * from {model.relation} "
            "where ts >= $window_start and ts < $window_end",
            window,
        )

        def write() -> None:
            con.execute("begin")
            con.execute(
                f"delete from {model.relation} where ts >= $window_start and ts < $window_end", window
            )
            con.execute(f"insert into {model.relation} select * from written")
            con.execute("commit")

        out["write_s"], out["write_cpu"] = timed(runs, write)
        copy = f"copy written to '{lake.parent / 'written.parquet'}' (format parquet)"
        out["copy_s"], out["copy_cpu"] = timed(runs, lambda: con.execute(copy))
        marks = con.execute(
            "select option_type = 'call', forward_price, strike, years_to_expiry, "
            "case when premium_currency in ('USD', 'USDT', 'USDC') then mark_price else mark_price * forward_price end "
            f"from {model.relation} where ts >= $window_start and ts < $window_end",
            window,
        ).fetchnumpy()
        arrays = [np.asarray(v, dtype=bool if i == 0 else np.float64) for i, v in enumerate(marks.values())]

        def solve() -> None:
            vol = options.implied_vol(*arrays)
            options.greeks(arrays[0], arrays[1], arrays[2], arrays[3], vol)

        out["solver_s"], out["solver_cpu"] = timed(runs, solve)
        con.remove_function("black76")
        double = duckdb.sqltype("double")
        con.create_function("black76", _nulls, [duckdb.sqltype("boolean"), *[double] * 5],
                            duckdb.struct_type({f: double for f in options.FIELDS}), type=PythonUDFType.ARROW)  # fmt: skip
        out["sql_s"], out["sql_cpu"] = timed(runs, mart)
        con.execute(f"delete from {model.relation}")  # the nulls written by the SQL-alone runs
    return out


def section(r: dict[str, float], load_average: float) -> str:
    ratio = r["mart_s"] / r["scan_s"]
    met = "met" if ratio < RATIO_MAX else "not met"
    return f"""{SECTION}

`python -m bench.options` on {machine()}, load average {load_average:.1f} at the start (the machine is
shared: CPU seconds are the process's, over DuckDB's threads). One month (April 2026) of the embedded
emulator's 1m OKX marks of 20 BTC options (10 strikes x call/put, 26 June 2026 expiry) and their
future: {r["minutes"]:,.0f} 1m option rows, {r["rows"]:,.0f} with the rollups fct_price_interval makes
(5m .. 1d), all of which fct_option_vol covers. Medians.

| step | wall s | CPU s |
| --- | --- | --- |
| scan: the option rows' 8 columns from fct_price_interval into a temporary table | {r["scan_s"]:.2f} | {r["scan_cpu"]:.2f} |
| fct_option_vol for the month (delete + insert, as refresh_marts) | {r["mart_s"]:.2f} | {r["mart_cpu"]:.2f} |
| writing the month's mart rows again from a temporary table (no computation: any stored mart's floor) | {r["write_s"]:.2f} | {r["write_cpu"]:.2f} |
| the same rows into one parquet file (COPY, no lake: the cheapest write) | {r["copy_s"]:.2f} | {r["copy_cpu"]:.2f} |
| the same with black76 returning nulls (the SQL alone) | {r["sql_s"]:.2f} | {r["sql_cpu"]:.2f} |
| implied_vol + greeks over the marks as whole NumPy arrays (the solver alone) | {r["solver_s"]:.2f} | {r["solver_cpu"]:.2f} |

Target (issue 29): the mart under {RATIO_MAX:g}x the scan: **{ratio:.1f}x, {met}** (in CPU seconds
{r["mart_cpu"] / r["scan_cpu"]:.1f}x). What limits it: the solve is {r["solver_cpu"]:.2f} s of the mart's
{r["mart_cpu"]:.2f} CPU s as whole arrays, {r["mart_cpu"] - r["sql_cpu"]:.2f} s through DuckDB's 2,048-row Arrow
batches; the SQL alone ({r["sql_cpu"]:.2f} s) joins each option row to its future's mark and writes 25
columns of every row into the lake, where the scan reads 8 into memory. The solver was SciPy's
Chandrupatla at 7.15 s for 864k marks; the Newton here takes 1.0-1.3 s for them (about 3 steps a mark).

Why no stored mart meets it (CPU seconds, against the scan's {r["scan_cpu"]:.2f} s): writing the month's
rows already computed, with no SQL and no solve, costs {r["write_cpu"]:.2f} s into the lake
({r["write_cpu"] / r["scan_cpu"]:.1f}x) and {r["copy_cpu"]:.2f} s into one plain parquet file
({r["copy_cpu"] / r["scan_cpu"]:.1f}x); the solve alone costs {r["solver_cpu"]:.2f} s
({r["solver_cpu"] / r["scan_cpu"]:.1f}x). A view computed at read time would skip the write but make every
query pay the solve, which by itself is near the budget.
"""


def write_section(text: str) -> None:
    path = REPO / "docs" / "benchmarks.md"
    doc = path.read_text()
    if SECTION in doc:
        start = doc.index(SECTION)
        nxt = doc.find("\n## ", start + len(SECTION))
        doc = doc[:start] + text.rstrip("\n") + ("\n" + doc[nxt:] if nxt >= 0 else "\n")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.options")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print, leave docs/benchmarks.md alone")
    parser.add_argument("--lake", type=Path, help="a lake this bench loaded before (kept; loaded if missing)")
    opts = parser.parse_args()
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="markhouse-bench-options-") as work:
        lake = opts.lake or Path(work) / "options.sqlite"
        if not lake.exists():
            load(lake)
        result = measure(lake, opts.runs)
    text = section(result, load_average)
    print(text)
    if not opts.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
