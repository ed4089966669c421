"""Runs in parallel through Dagster's queue: with ``deploy/parallel/dagster.yaml`` as written (Dagster's
storage on PostgreSQL, the queued run coordinator admitting 2 runs), month partitions and two vendors
of one month are launched as queued runs (``dagster job launch``), and the daemon
(``dagster-daemon run``, the real one, with the default run launcher: a process per run) executes
them two at a time into one lake (a PostgreSQL DuckLake catalog, a shared data folder). The marts
equal a one-process `markhouse backfill`'s, and every serving file a reader found while the runs
published was a whole snapshot. Offline; the daemon and its processes are stopped at the end."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import BIN, REPO, database, isolated_environment, mart_rows, run_command
from tests.conftest import BTC_PERPETUAL_1H_FROM_MARCH as UNIVERSE

APERIODIC, KAIKO = "raw__aperiodic_derivative_price", "raw__kaiko_derivative_price"
# (month, the steps of the refresh job the run selects): two vendors of March as two runs, April whole
RUNS = [
    ("2026-03-01", [APERIODIC, "marts"]),
    ("2026-03-01", [KAIKO, "marts"]),
    ("2026-04-01", [APERIODIC, KAIKO, "marts"]),
]


def whole_snapshots(serving: Path, stop: threading.Event, seen: dict[str, Any]) -> None:
    """Open the serving file over and over while runs publish: in each file found, every mart's
    rows (read through its views) must number what its ``meta.publication`` recorded."""
    while not stop.is_set():
        try:
            target = serving.parent / os.readlink(serving)
            con = duckdb.connect(str(target), read_only=True)
        except (OSError, duckdb.Error):  # not published yet, or swapped and removed just now
            time.sleep(0.05)
            continue
        try:
            (snapshot, recorded) = con.execute(
                "select snapshot_id, row_counts from meta.publication"
            ).fetchone()
            counts = {
                name: con.execute(f"select count(*) from {name}").fetchone()[0]
                for name in json.loads(recorded)
            }
            seen.setdefault(target.name, (snapshot, json.loads(recorded), counts))
        except duckdb.Error as exc:  # parquet files of a snapshot are never removed by a run
            seen.setdefault("errors", []).append(str(exc))
        finally:
            con.close()
        time.sleep(0.05)


def test_queued_runs_of_months_and_vendors_run_two_at_a_time_into_one_lake(
    postgres: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    universe = tmp_path / "universe.yaml"
    universe.write_text(UNIVERSE)
    env = isolated_environment(
        tmp_path / "host",
        MARKHOUSE_CATALOG=database(postgres, "lake_parallel"),
        MARKHOUSE_DATA_PATH=str(tmp_path / "shared" / "lake-data"),
        MARKHOUSE_DAGSTER_POSTGRES_URL=database(postgres, "dagster_parallel"),
        MARKHOUSE_UNIVERSE=str(universe),
        PYTHONWARNINGS="ignore",
    )
    home = Path(env["DAGSTER_HOME"])
    shutil.copy(REPO / "deploy" / "parallel" / "dagster.yaml", home / "dagster.yaml")
    serving = Path(env["MARKHOUSE_SERVING"])

    # launched at once, as three users would (each loads the code location: ~15 s on a busy host)
    def launch(month: str, steps: list[str]) -> subprocess.Popen[str]:
        command = ["dagster", "job", "launch", "-m", "pipelines.definitions", "-j", "refresh"]
        command += ["--tags", json.dumps({"dagster/partition": month}), "-o", ",".join(steps)]
        # each run's steps in its process (the job's default forks a process per step: slower here)
        command += ["--config-json", json.dumps({"execution": {"config": {"in_process": {}}}})]
        command[0] = str(BIN / command[0])
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    monkeypatch.setenv("MARKHOUSE_DAGSTER_POSTGRES_URL", env["MARKHOUSE_DAGSTER_POSTGRES_URL"])
    # Dagster's storage made once, as a deployment's first start would: three processes making its
    # tables at once race in dagster_postgres (InstanceInfo.create), which failed a run now and then
    dg.DagsterInstance.from_config(str(home)).dispose()
    launches = [launch(month, steps) for month, steps in RUNS]
    try:
        for p in launches:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-3000:]
    finally:
        for p in launches:
            if p.poll() is None:
                p.kill()
                p.wait()
    instance = dg.DagsterInstance.from_config(str(home))
    runs = instance.get_runs()
    assert [r.status for r in runs] == [dg.DagsterRunStatus.QUEUED] * len(
        RUNS
    )  # nothing runs without the daemon

    stop = threading.Event()
    seen: dict[str, Any] = {}
    watcher = threading.Thread(target=whole_snapshots, args=(serving, stop, seen), daemon=True)
    watcher.start()
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "pipelines.definitions"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    running_together = 0
    try:
        deadline = time.monotonic() + 480
        while True:
            statuses = [r.status for r in instance.get_runs()]
            running_together = max(running_together, statuses.count(dg.DagsterRunStatus.STARTED))
            if all(s in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) for s in statuses):
                break
            assert time.monotonic() < deadline, statuses
            assert statuses.count(dg.DagsterRunStatus.STARTED) <= 2  # the queue's limit
            time.sleep(0.2)
    finally:
        stop.set()
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            log, _ = daemon.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            log, _ = daemon.communicate(timeout=30)
        watcher.join(timeout=30)
        instance.dispose()
    runs = instance.get_runs()
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * len(RUNS), log[-3000:]
    # two runs were in flight at once: seen so, and by their recorded start and end times
    spans = sorted((s.start_time, s.end_time) for s in (instance.get_run_stats(r.run_id) for r in runs))
    assert running_together == 2 and any(b[0] < a[1] for a, b in itertools.pairwise(spans)), spans

    # every serving file found while they published was whole, the last one is the lake's
    assert "errors" not in seen, seen.get("errors")
    assert len(seen) >= 2 and all(recorded == counts for _, recorded, counts in seen.values()), seen

    with duckdb_lake(env, monkeypatch) as con:
        parallel = mart_rows(con)
    last = max(seen.values(), key=lambda v: v[0])
    assert {k: v for k, v in last[1].items() if k.removeprefix("marts.") in parallel} == {
        f"marts.{name}": len(rows) for name, rows in parallel.items()
    }

    # the same two months in one process (markhouse backfill), on the embedded catalog
    single_env = isolated_environment(
        tmp_path / "single", MARKHOUSE_UNIVERSE=str(universe), PYTHONWARNINGS="ignore"
    )
    out = run_command(
        "markhouse", "backfill", "--start", "2026-03", "--end", "2026-04", env=single_env, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("MARKHOUSE_CATALOG", "MARKHOUSE_DATA_PATH"):
        monkeypatch.delenv(name, raising=False)
    from pipelines.warehouse.lake import Warehouse

    with Warehouse(Path(single_env["MARKHOUSE_WAREHOUSE"])).reader() as con:
        alone = mart_rows(con)
    assert parallel == alone
    # by the calendar: March and April at 1h for each vendor (1h rows, 4h and 1d rollups)
    assert len(parallel["fct_price_interval"]) == 2 * (744 + 186 + 31 + 720 + 180 + 30)


def duckdb_lake(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """A reader of the shared lake at its latest published snapshot."""
    from pipelines.warehouse.lake import Warehouse

    for name in ("MARKHOUSE_CATALOG", "MARKHOUSE_DATA_PATH"):
        monkeypatch.setenv(name, env[name])
    return Warehouse(Path(env["MARKHOUSE_WAREHOUSE"])).reader()
