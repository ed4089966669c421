"""`markhouse backfill` loads the vendors in parallel step processes: read from the run's own step
events in the Dagster instance, the loads of different vendors overlap, one vendor's never do, the
marts start after every load ended; and the marts equal those of a one-step-at-a-time run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.processes import isolated_environment, step_spans

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BACKFILL = ["backfill", "--start", "2026-03", "--end", "2026-03"]
Interval = tuple[float, float]


def env_for(root: Path, **extra: str) -> dict[str, str]:
    return isolated_environment(root, MARKHOUSE_REPORT="0", PYTHONWARNINGS="ignore", **extra)


def backfill(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [str(BIN / "markhouse"), *BACKFILL], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def step_times(env: dict[str, str]) -> dict[str, Interval]:
    """Step key -> (start, success) timestamps of the one (successful) run."""
    return step_spans(env["DAGSTER_HOME"])


def overlap(a: Interval, b: Interval) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def loads(times: dict[str, Interval]) -> dict[str, list[Interval]]:
    """Vendor -> its load steps' intervals."""
    vendors: dict[str, list[Interval]] = {}
    for key, interval in times.items():
        if key.startswith("raw__"):
            vendors.setdefault(key.removeprefix("raw__").split("_")[0], []).append(interval)
    return vendors


def marts(serving: str) -> dict[str, pa.Table]:
    con = duckdb.connect(serving, read_only=True)
    try:
        names = [
            n
            for (n,) in con.execute(
                "select view_name from duckdb_views() where schema_name = 'marts'"
            ).fetchall()
        ]
        tables = {}
        for name in sorted(names):
            columns = [
                c for (c,) in con.execute(f"select column_name from (describe marts.{name})").fetchall()
            ]
            keep = ", ".join(f'"{c}"' for c in columns if c != "loaded_at")  # when the run wrote it
            tables[name] = con.execute(f"select {keep} from marts.{name}").to_arrow_table()
        return tables
    finally:
        con.close()


def test_vendors_load_in_parallel_and_the_marts_equal_a_sequential_run(tmp_path: Path) -> None:
    parallel_env = env_for(tmp_path / "parallel")
    sequential_env = env_for(tmp_path / "sequential", MARKHOUSE_MAX_CONCURRENT="1")
    parallel = backfill(parallel_env)
    backfill(sequential_env)

    times = step_times(parallel_env)
    by_vendor = loads(times)
    assert sorted(by_vendor) == ["aperiodic", "cayolargo", "kaiko"]
    assert len(by_vendor["aperiodic"]) == 3  # derivative price, funding, open interest
    for vendor, intervals in by_vendor.items():  # one writer per vendor's raw tables
        assert not any(overlap(a, b) for i, a in enumerate(intervals) for b in intervals[i + 1 :]), vendor
    pairs = [("aperiodic", "kaiko"), ("aperiodic", "cayolargo"), ("kaiko", "cayolargo")]
    overlapping = [(v, w) for v, w in pairs if any(overlap(a, b) for a in by_vendor[v] for b in by_vendor[w])]
    assert overlapping, times  # different vendors' loads ran at the same time
    last_load = max(end for intervals in by_vendor.values() for _, end in intervals)
    assert times["marts"][0] >= last_load  # the marts refresh after every load
    sequential = list(step_times(sequential_env).values())  # MARKHOUSE_MAX_CONCURRENT=1: one at a time
    assert not any(overlap(a, b) for i, a in enumerate(sequential) for b in sequential[i + 1 :])

    # each vendor's progress reached the terminal from its step process, and the verdicts were printed
    for vendor in ("aperiodic", "kaiko", "cayolargo"):
        assert f"{vendor}: 1/1 months written" in parallel.stderr, parallel.stderr[-3000:]
    assert " dagster - DEBUG - " not in parallel.stderr  # the step processes' own announcements
    assert "check marts/rpt_vendor_divergence vendors_agree: passed" in parallel.stdout

    got, want = marts(parallel_env["MARKHOUSE_SERVING"]), marts(sequential_env["MARKHOUSE_SERVING"])
    assert got.keys() == want.keys() and {"fct_price_interval", "rpt_coverage"} <= got.keys()
    con = duckdb.connect()
    for name in got:
        con.register("got", got[name])
        con.register("want", want[name])
        assert got[name].num_rows == want[name].num_rows > 0, name
        for a, b in (("got", "want"), ("want", "got")):
            (extra,) = con.execute(
                f"select count(*) from (select * from {a} except all select * from {b})"
            ).fetchone()  # type: ignore[misc]
            assert extra == 0, (name, a, b)
        con.unregister("got")
        con.unregister("want")
