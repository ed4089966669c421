"""``python -m bench.marts_share`` (part of ``make bench``): what each incremental mart costs in the
marts phase (issue 27: the carry-curve marts may add at most 25 % to it at 48 months).

Backfills the bench universe (or takes ``--warehouse``, any lake a backfill left), then rebuilds
every incremental mart over all its months as ``refresh_marts`` does (the same windows, one
transaction each), timing each model's statements. The models alternate inside every window, so
load on the shared machine falls on all of them alike: the shares hold where wall seconds do not.
CPU is the process's user + system time over DuckDB's threads.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.__main__ import backfill_env
from bench.data import DATA, ensure_months, months_back
from pipelines.emulator.server import Emulator
from pipelines.models import (
    ALL_KEYS,
    _finite_columns,
    build_views,
    in_dependency_order,
    mart_models,
    month_windows,
)
from pipelines.warehouse.concurrency import transaction
from pipelines.warehouse.lake import Warehouse, loaded_months, used_params

NEW_IN_ISSUE_27 = ("fct_carry_constant_maturity", "rpt_carry_trade")  # the others are views


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backfill(months: int, work: Path) -> Path:
    """The bench universe's ``months`` of 1m prices through ``markhouse backfill``."""
    ensure_months(months)
    span = months_back(months)
    lake = work / "bench.sqlite"
    with Emulator(aperiodic_files=DATA / "aperiodic") as emu:
        env = {**os.environ, **backfill_env(work, span[0], emu), "MARKHOUSE_WAREHOUSE": str(lake)}
        subprocess.run(
            [
                str(Path(sys.executable).parent / "markhouse"),
                "backfill",
                "--start",
                f"{span[0]:%Y-%m}",
                "--end",
                f"{span[-1]:%Y-%m}",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    return lake


def shares(lake: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Wall and CPU seconds per incremental mart over every loaded month."""
    wall: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    with Warehouse(lake).writer(holder="bench.marts_share") as con:
        months = loaded_months(con)
        build_views(con)
        models = [m for m in in_dependency_order(mart_models()) if m.incremental]
        finite = {m.name: _finite_columns(con, m.relation) for m in models}
        for start, end in month_windows(months):
            window = {"window_start": start, "window_end": end}
            with transaction(con):
                for model in models:
                    t, c = time.perf_counter(), _cpu()
                    column = model.time_column
                    con.execute(
                        f"delete from {model.relation} where {column} >= $window_start::timestamptz "
                        f"and {column} < $window_end::timestamptz",
                        window,
                    )
                    con.execute(
                        f"insert into {model.relation} by name\nselect {finite[model.name]} from ({model.sql})",
                        used_params(model.sql, {**window, "first_key": ALL_KEYS[0], "next_key": ALL_KEYS[1]}),
                    )
                    wall[model.name] += time.perf_counter() - t
                    cpu[model.name] += _cpu() - c
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.marts_share")
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--warehouse", type=Path, help="a lake to measure instead of backfilling one")
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="markhouse-bench-marts-share-"))
    try:
        lake = opts.warehouse or backfill(opts.months, work)
        load = os.getloadavg()[0]
        wall, cpu = shares(lake)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'mart':<30} {'wall s':>8} {'cpu s':>8}  (load average {load:.1f} -> {os.getloadavg()[0]:.1f})")
    for name in wall:
        print(f"{name:<30} {wall[name]:8.2f} {cpu[name]:8.2f}")
    for label, seconds in (("wall", wall), ("cpu", cpu)):
        new = sum(seconds[n] for n in NEW_IN_ISSUE_27)
        before = sum(seconds.values()) - new
        print(f"issue 27's marts add {100 * new / before:.1f} % {label} to the marts phase (target <= 25 %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
