"""``python -m bench.width``: wide universes (issue 28). Backfills 25, 100 and 400 synthetic 1m
perpetuals over 3 months (bench/data.py's generator, one file per symbol-month served by the
emulator), each width in a fresh `markhouse backfill` process, and reports seconds (wall and CPU) per
instrument-month, peak RSS, data files per table-month (raw and marts) and a one-month selective query on one
instrument through the serving file; writes the section "Width" of ``docs/benchmarks.md``.

Targets (issue 28): cost per instrument-month at 400 within 1.2x of that at 25; peak RSS under
2 GiB at 400; files per table-month independent of the number of instruments; the selective query
under 50 ms at 400. Heavy at 400 (about 54 M rows): run it on a machine of its own, not in CI.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from bench.__main__ import REPO, machine, run_path
from bench.data import DATA, EXCHANGE, MONTH_SQL, months_back
from pipelines.emulator.server import Emulator

SECTION = "## Width: hundreds of instruments (issue 28)"
STORE = DATA / "width"  # the emulator's prebuilt Aperiodic store for the synthetic symbols
COST_RATIO_MAX, RSS_MB_MAX, QUERY_MS_MAX = 1.2, 2048.0, 50.0


def symbols(n: int) -> list[str]:
    return [f"perpetual-W{i:03d}-USDT:USDT" for i in range(n)]


def ensure_store(n: int, months: list[date]) -> None:
    """The ``n`` symbols' month files (generated once, cached under bench/.data/width/)."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    try:
        for i, symbol in enumerate(symbols(n)):
            for m in months:
                path = STORE / EXCHANGE / "1m" / "exchange" / symbol / f"{m:%Y-%m}.parquet"
                if path.exists():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                end = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
                con.execute(MONTH_SQL.format(path=path), {"start": m, "end": end, "base": 10.0 + i})
    finally:
        con.close()


def universe_yaml(n: int, first: date) -> str:
    return (
        f"start_month: {first:%Y-%m}\naperiodic:\n  metrics: [derivative_price]\n  intervals: [1m]\n"
        "  timestamp_types: [exchange]\n  instruments:\n"
        + "".join(f"    - {{venue: {EXCHANGE}, symbol: '{s}'}}\n" for s in symbols(n))
    )


def files_per_table_month(lake: Path) -> dict[str, int]:
    """The most data files any month of each raw table and mart has (its partition folders in each
    path: ``month=`` for raw tables, ``year=/month=`` for the marts)."""
    from pipelines.warehouse.lake import Warehouse

    counts: dict[tuple[str, str], int] = {}
    for path in Warehouse(lake).data_path.rglob("*.parquet"):
        parts = path.parts
        layer = next((p for p in ("raw", "marts") if p in parts), None)
        if layer and "month=" in str(path):
            at = parts.index(layer) + 1
            key = (f"{layer}.{parts[at]}", "/".join(parts[at + 1 : -1]))
            counts[key] = counts.get(key, 0) + 1
    out: dict[str, int] = {}
    for (table, _), n in counts.items():
        out[table] = max(out.get(table, 0), n)
    return out


def selective_query_ms(serving: Path, symbol: str, month: date, runs: int = 20) -> float:
    """Median milliseconds of one instrument's month of 1m rows from the serving file (one warm-up),
    fetched as Arrow, as a notebook or BI driver takes them: ``fetchall()`` would time building
    43k Python tuples with time-zone-aware datetimes (about 140 ms on the demo), not the query (8 ms)."""
    end = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    con = duckdb.connect(str(serving), read_only=True)
    sql = (
        "select ts, mark_price from marts.fct_price_interval where instrument_key = $k "
        "and interval = '1m' and ts >= $a and ts < $b order by ts"
    )
    try:
        params = {"k": symbol, "a": month, "b": end}
        assert con.execute(sql, params).to_arrow_table().num_rows, "the query found no rows"
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            con.execute(sql, params).to_arrow_table()
            times.append((time.perf_counter() - t) * 1000)
    finally:
        con.close()
    return statistics.median(times)


def measure(n: int, months: list[date]) -> dict[str, Any]:
    ensure_store(n, months)
    before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="markhouse-bench-width-"))
    try:
        (work / "universe.yaml").write_text(universe_yaml(n, months[0]))
        (work / "dagster_home").mkdir()
        (work / "dagster_home" / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
        with Emulator(aperiodic_files=STORE) as emu:
            env = {
                "APERIODIC_BASE_URL": emu.base_url("aperiodic"),
                "APERIODIC_API_KEY": emu.api_key,
                "MARKHOUSE_UNIVERSE": str(work / "universe.yaml"),
                "MARKHOUSE_SERVING": str(work / "serving.duckdb"),
                "DAGSTER_HOME": str(work / "dagster_home"),
                "PYTHONWARNINGS": "ignore",
            }
            last = months[-1]
            args = {
                "lake": str(work / "width.sqlite"),
                "start": months[0].isoformat(),
                "end": date(last.year, last.month, 28).isoformat(),
                "env": env,
            }
            cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            phases, rss = run_path("markhouse", args)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "instruments": n,
            "instrument_months": n * len(months),
            "seconds": phases["total"],
            # CPU of the whole process tree: the machine is shared, and wall seconds follow its load
            "cpu_seconds": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
            "phases": phases,
            "rss_mb": rss,
            "files": files_per_table_month(work / "width.sqlite"),
            "query_ms": selective_query_ms(work / "serving.duckdb", symbols(n)[-1], last),
            "load_average": f"{before:.1f} -> {os.getloadavg()[0]:.1f}",
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def render(rows: list[dict[str, Any]], months: int) -> str:
    base = rows[0]["seconds"] / rows[0]["instrument_months"]
    lines = [
        SECTION,
        "",
        f"`python -m bench.width`: {months} months of synthetic 1m perpetuals (Aperiodic files from the "
        "emulator), one `markhouse backfill` per width in a fresh process. Machine: " + machine() + ".",
        "",
        "| instruments | instrument-months | backfill s (load, marts) | s per instrument-month | vs narrowest "
        "| CPU s per instrument-month (vs narrowest) | peak RSS MB | files per table-month (max) "
        "| one-instrument month query ms | load average |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    cpu_base = rows[0]["cpu_seconds"] / rows[0]["instrument_months"]
    for r in rows:
        per = r["seconds"] / r["instrument_months"]
        cpu = r["cpu_seconds"] / r["instrument_months"]
        files = ", ".join(f"{t} {n}" for t, n in sorted(r["files"].items()))
        lines.append(
            f"| {r['instruments']} | {r['instrument_months']} | {r['seconds']:.1f} ({r['phases'].get('load', 0):.1f}, "
            f"{r['phases'].get('marts', 0):.1f}) | {per:.3f} | {per / base:.2f}x | {cpu:.3f} ({cpu / cpu_base:.2f}x) "
            f"| {r['rss_mb']:.0f} | {files} | {r['query_ms']:.1f} | {r['load_average']} |"
        )
    widest = rows[-1]
    ratio = widest["seconds"] / widest["instrument_months"] / base
    same_files = len({tuple(sorted(r["files"].items())) for r in rows}) == 1
    lines += [
        "",
        f"- [{'x' if ratio <= COST_RATIO_MAX else ' '}] cost per instrument-month at {widest['instruments']} "
        f"within {COST_RATIO_MAX}x of {rows[0]['instruments']}'s ({ratio:.2f}x)",
        f"- [{'x' if widest['rss_mb'] < RSS_MB_MAX else ' '}] peak RSS under {RSS_MB_MAX:.0f} MB at "
        f"{widest['instruments']} ({widest['rss_mb']:.0f} MB)",
        f"- [{'x' if same_files else ' '}] data files per table-month (raw tables and marts) independent of the width",
        f"- [{'x' if widest['query_ms'] < QUERY_MS_MAX else ' '}] one instrument's month under "
        f"{QUERY_MS_MAX:.0f} ms at {widest['instruments']} ({widest['query_ms']:.1f} ms)",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.width")
    parser.add_argument("--instruments", type=int, nargs="+", default=[25, 100, 400])
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    opts = parser.parse_args()
    months = months_back(opts.months)
    rows = []
    for n in sorted(opts.instruments):
        print(f"== {n} instruments x {opts.months} months of 1m data", flush=True)
        rows.append(measure(n, months))
        print(f"  {rows[-1]['seconds']:.1f}s, {rows[-1]['rss_mb']:.0f} MB", flush=True)
    section = render(rows, opts.months)
    print(section)
    text = opts.out.read_text() if opts.out.exists() else "# Benchmarks\n"
    head, _, rest = text.partition(SECTION)
    tail = rest[rest.index("\n## ") :] if "\n## " in rest else ""  # the sections after this one stay
    opts.out.write_text(f"{head.rstrip()}\n\n{section}{tail}")
    print(f"written to {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
