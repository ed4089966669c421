"""The whole graph: Dagster loads it, and a month range backfills as ONE run from the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tests.conftest import isolated_environment, run_command

REPO = Path(__file__).resolve().parent.parent
FUNDING_SAMPLE = REPO / "pipelines/emulator/data/binance_usdm_funding.parquet"


def env_for(tmp_path: Path) -> dict[str, str]:
    return isolated_environment(tmp_path, PYTHONWARNINGS="ignore")


def test_dagster_definitions_validate(tmp_path: Path) -> None:
    out = run_command("dagster", "definitions", "validate", env=env_for(tmp_path), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_raw_assets_are_monthly_every_asset_single_run_grouped_by_vendor_with_no_pool() -> None:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw/aperiodic_derivative_price", "marts/fct_price_interval", "marts/rpt_coverage"} <= keys
    assert {"raw/aperiodic_funding", "raw/aperiodic_open_interest"} <= keys  # the demo loads every metric
    maintenance = dg.AssetKey(["maintenance", "warehouse_files"])
    for assets_def in defs.resolve_all_asset_specs():
        if assets_def.key.path[0] == "raw":  # each source's raw tables: a partition per month
            assert isinstance(assets_def.partitions_def, dg.MonthlyPartitionsDefinition)
        else:  # whole-history tables refreshed for the run's months, the report, the files
            assert assets_def.partitions_def is None, assets_def.key
    groups: dict[str, str] = {}
    for node in graph.asset_nodes:
        if node.key != maintenance:  # a month range of the refresh job is one run
            assert node.backfill_policy == dg.BackfillPolicy.single_run()
        if node.key.path[0] == "raw":
            groups[node.key.path[-1]] = node.group_name
        # who writes the warehouse when is its own lock (pipelines.warehouse.concurrency), not a pool
        assert not node.pools, node.key
    assert {table.split("_")[0] for table in groups} == {"aperiodic", "kaiko", "cayolargo"}
    assert all(group == table.split("_")[0] for table, group in groups.items())
    assert defs.resolve_schedule_def("daily_current_month").cron_schedule == "15 2 * * *"
    # file maintenance: its own job on a schedule, never part of the refresh runs
    assert defs.resolve_schedule_def("nightly_maintenance").job_name == "maintenance"
    assert maintenance in defs.resolve_job_def("maintenance").asset_layer.selected_asset_keys
    assert maintenance not in defs.resolve_job_def("refresh").asset_layer.selected_asset_keys
    # the scheduled refresh draws the report after the marts (the command draws it on --report)
    assert dg.AssetKey(["report"]) in defs.resolve_job_def("refresh").asset_layer.selected_asset_keys


def test_cli_backfill_of_a_range_is_one_run_on_the_embedded_emulator(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    summary_json = str(tmp_path / "summary.json")
    out = run_command(
        "markhouse",
        "backfill",
        "--start",
        "2026-03",
        "--end",
        "2026-05",
        "--summary-json",
        summary_json,
        "--report",
        env=env,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "3/3 months written" in out.stderr  # progress on the terminal
    run = json.loads((tmp_path / "summary.json").read_text())  # the run as data, for benchmarks
    assert run["ok"] is True and set(run["phases"]) == {"load", "marts", "publish"}
    assert all(seconds > 0 for seconds in run["phases"].values())
    # by hand: 2 instruments x (744 + 720 + 384) hours, for prices, funding and basis alike (one
    # row per interval); CayøLargo 2 coins x 4 instruments x 77 days x 144 snapshots
    assert run["rows"]["raw/aperiodic_derivative_price"] == 2 * 1848
    assert run["rows"]["raw/aperiodic_funding"] == run["rows"]["raw/aperiodic_basis"] == 2 * 1848
    assert run["rows"]["raw/cayolargo_futures"] == 2 * 4 * 77 * 144
    summary = [line.split() for line in out.stdout.splitlines() if line.startswith("aperiodic ")]
    # the summary: May of the emulator is 16 whole days of hours
    assert [
        "aperiodic",
        "binance-futures",
        "perpetual-ETH-USDT:USDT",
        "exchange",
        "1h",
        "2026-05",
        "384",
    ] in [r[:7] for r in summary]
    # judged by the emulator's clock (its data ends 2026-05-17 08:00), the demo is green
    for check in ("series_up_to_date", "no_missing_intervals", "vendors_agree"):
        assert f" {check}: passed" in out.stdout
    assert "FAILED" not in out.stdout
    assert out.stdout.rstrip().splitlines()[-1].startswith("done: the marts")
    # the report this run drew, beside the serving file, and the closing lines point at it
    report = Path(env["MARKHOUSE_SERVING"]).parent / "report" / "markhouse-report.html"
    assert run["report"] is not None and Path(run["report"]).resolve() == report.resolve()
    assert report.stat().st_size > 0 and f"charts are beside it as PNGs): {run['report']}" in out.stdout
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS
    con = duckdb.connect(env["MARKHOUSE_SERVING"], read_only=True)  # views over the published snapshot
    try:
        counts = dict(
            con.execute(
                "select interval, count(*) from marts.fct_price_interval where vendor = 'aperiodic' group by all"
            ).fetchall()
        )
        cayolargo = con.execute(
            "select count(*) from marts.fct_price_interval where vendor = 'cayolargo' and interval = '10m'"
        ).fetchone()
        funding = con.execute(
            "select instrument_key, count(funding_rate), min(funding_interval_hours), max(funding_interval_hours), "
            "avg(funding_annualized_pct) from marts.fct_carry where vendor = 'aperiodic' group by all order by 1"
        ).fetchall()
        # second method: the real 8-hourly rates of the shipped sample, averaged and x 3 x 365 x 100
        real = con.execute(
            f"select avg(last_funding_rate) * 3 * 365 * 100 from read_parquet('{FUNDING_SAMPLE}') "
            "where symbol = 'BTCUSDT' and calc_time >= '2026-03-01 00:00:00+00' "
            "and calc_time < '2026-05-17 00:00:00+00'"
        ).fetchone()
    finally:
        con.close()
    # 2 instruments x (744 + 720 + 384) native hours; 4h and 1d rolled up from them
    assert counts == {"1h": 2 * 1848, "4h": 2 * 1848 // 4, "1d": 2 * 1848 // 24}
    # CayøLargo, 2 coins x 4 instruments at every 10-minute snapshot of (31 + 30 + 16) days
    assert cayolargo == (2 * 4 * 77 * 144,)
    # Binance funding: one row per hour, each annualized with the venue's default 8 h; every
    # settlement's rate holds for its 8 hours, so the hourly mean is the settlements' mean
    assert [r[:4] for r in funding] == [
        (k, 1848, 8.0, 8.0) for k in ("perpetual-BTC-USDT:USDT", "perpetual-ETH-USDT:USDT")
    ]
    assert real is not None and funding[0][4] == pytest.approx(real[0])
    assert "Funding APR per venue (fct_carry)" in out.stdout


def test_cli_rejects_a_bad_range(tmp_path: Path) -> None:
    out = run_command(
        "markhouse", "backfill", "--start", "2026-05", "--end", "2026-03", env=env_for(tmp_path), timeout=60
    )
    assert out.returncode == 2 and "is before --start" in out.stderr


def test_daily_schedule_refreshes_the_running_month() -> None:
    from datetime import UTC, datetime

    from pipelines.definitions import defs

    schedule = defs.resolve_schedule_def("daily_current_month")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 5, 17, 2, 15, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2026-05-01"
    assert request.run_key == "current-month-2026-05-17"


def test_a_run_asking_for_an_instrument_outside_the_universe_fails_naming_it() -> None:
    import pytest

    from pipelines.definitions import universe
    from pipelines.partitions import selected_instruments

    assert universe.section("aperiodic") is not None
    listed = universe.section("aperiodic").instruments
    assert selected_instruments(listed, [], "Aperiodic") == list(listed)
    assert [
        i.instrument_key for i in selected_instruments(listed, [listed[0].instrument_key], "Aperiodic")
    ] == [listed[0].instrument_key]
    with pytest.raises(dg.Failure, match=r"not in the Aperiodic universe: \['perpetual-DOGE-USDT:USDT'\]"):
        selected_instruments(listed, ["perpetual-DOGE-USDT:USDT", listed[0].instrument_key], "Aperiodic")


def test_mart_assets_carry_their_description_and_column_schema_from_marts_yml() -> None:
    import yaml

    from pipelines.definitions import defs

    docs = yaml.safe_load((REPO / "sql" / "marts" / "marts.yml").read_text())
    graph = defs.resolve_asset_graph()
    marts = [k for k in graph.get_all_asset_keys() if k.path[0] == "marts"]
    # 13, and issue 29's fct_option_vol, rpt_vol_smile and rpt_vol_term_structure
    assert len(marts) == len(docs) == 16
    for key in marts:
        node = graph.get(key)
        doc = docs[key.path[-1]]
        assert node.description == doc["description"]
        schema = node.metadata["dagster/column_schema"]
        assert {c.name: c.description for c in schema.columns} == doc["columns"]
        assert all(c.type for c in schema.columns)
    coverage = graph.get(dg.AssetKey(["marts", "rpt_coverage"])).metadata["dagster/column_schema"]
    types = {c.name: c.type for c in coverage.columns}
    assert types["month"] == "date" and types["loaded_rows"] == "bigint"
    assert types["last_ts"] == "timestamp with time zone"


def parents(name: str) -> set[str]:
    from pipelines.definitions import defs

    node = defs.resolve_asset_graph().get(dg.AssetKey(name.split("/")))
    return {k.to_user_string() for k in node.parent_keys}


RAW = {
    "raw/aperiodic_derivative_price",
    "raw/aperiodic_funding",
    "raw/aperiodic_open_interest",
    "raw/aperiodic_basis",
    "raw/kaiko_derivative_price",
    "raw/cayolargo_futures",
}


def test_the_graph_shows_how_a_mart_is_built_staging_then_intermediate_then_marts() -> None:
    from pipelines.definitions import defs

    # read by hand from each SQL file's from/join; ref.* tables are no asset
    # sql/marts/fct_carry.sql: intermediate.int_carry_observations, ref.instrument, ref.funding_interval
    assert parents("marts/fct_carry") == {"intermediate/int_carry_observations"}
    # sql/intermediate/int_carry_observations.sql: one select per vendor's own carry observations
    assert parents("intermediate/int_carry_observations") == {
        "intermediate/int_aperiodic__carry_observations",
        "intermediate/int_kaiko__carry_observations",
        "intermediate/int_cayolargo__carry_observations",
    }
    # sql/sources/kaiko/intermediate/int_kaiko__carry_observations.sql
    assert parents("intermediate/int_kaiko__carry_observations") == {
        "staging/stg_kaiko__derivative_price",
        "intermediate/int_finest_loaded_interval",
    }
    assert parents("staging/stg_kaiko__derivative_price") == {"raw/kaiko_derivative_price"}
    # sql/marts/fct_price_interval.sql: intermediate.int_price_observations (and ref.intervals)
    assert parents("marts/fct_price_interval") == {"intermediate/int_price_observations"}
    assert parents("intermediate/int_price_observations") == {
        "staging/stg_aperiodic__derivative_price",
        "staging/stg_kaiko__derivative_price",
        "intermediate/int_cayolargo__price_observations",
    }
    assert parents("marts/rpt_vendor_divergence") == {"marts/fct_price_interval"}
    # raw.load_log, which every source's loads append to: each source asset
    assert parents("intermediate/int_finest_loaded_interval") == RAW
    assert parents("marts/rpt_coverage") == RAW | {"marts/fct_price_interval"}
    assert parents("marts/dim_instrument") == set()  # ref.instrument only
    # sql/marts/fct_option_vol.sql: marts.fct_price_interval (and ref.instrument, ref.intervals)
    assert parents("marts/fct_option_vol") == {"marts/fct_price_interval"}
    assert parents("marts/rpt_vol_term_structure") == {"marts/rpt_vol_smile"}
    graph = defs.resolve_asset_graph()
    layers = {"staging": 5, "intermediate": 8, "marts": 16}  # the files under sql/, counted by hand
    nodes = [graph.get(k) for k in graph.get_all_asset_keys() if k.path[0] in layers]
    assert {layer: sum(n.key.path[0] == layer for n in nodes) for layer in layers} == layers
    for node in nodes:  # grouped by layer, each reading only its own layer or the ones before it
        layer = node.key.path[0]
        assert node.group_name == layer
        allowed = {"raw", *list(layers)[: list(layers).index(layer) + 1]}
        assert {k.path[0] for k in node.parent_keys} <= allowed, node.key
        assert node.assets_def.node_def.name == "marts"  # all of them one step
    # the report: the marts its SQL and its data module read
    texts = [p.read_text() for p in (REPO / "sql" / "report").glob("*.sql")]
    texts.append((REPO / "pipelines" / "report" / "data.py").read_text())
    drawn = {f"marts/{name}" for text in texts for name in re.findall(r"\bmarts\.(\w+)", text)}
    assert "marts/fct_carry" in drawn and parents("report") == drawn


def test_every_check_tells_the_user_what_it_checks() -> None:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = graph.asset_check_keys
    names = {k.name for k in keys}
    assert {"every_unit_loaded", "series_up_to_date", "no_missing_intervals", "vendors_agree"} <= names
    assert "freshness" not in names  # Dagster's freshness policy judges the runs
    for key in keys:
        description = graph.get_check_spec(key).description
        assert description and len(description) > 40 and "\n" not in description, key


def test_raw_and_mart_assets_carry_dagsters_freshness_policy_with_the_configured_age(tmp_path: Path) -> None:
    script = (
        "from pipelines.definitions import defs\n"
        "graph = defs.resolve_asset_graph()\n"
        "for key in graph.get_all_asset_keys():\n"
        "    policy = graph.get(key).freshness_policy\n"
        "    print(key.to_user_string(), policy.fail_window.to_timedelta().total_seconds() if policy else None)\n"
    )
    env = env_for(tmp_path)
    env["MARKHOUSE_MAX_AGE_HOURS"] = "12.5"
    out = run_command("python", "-c", script, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    windows = dict(line.rsplit(" ", 1) for line in out.stdout.splitlines())
    for key, seconds in windows.items():
        if key.split("/")[0] in ("raw", "marts"):  # what vendors deliver, what people read
            assert seconds == str(12.5 * 3600), key
        else:  # views rebuilt with the marts, the report (the command draws it outside runs), maintenance
            assert seconds == "None", key
    assert set(windows) >= RAW and "marts/fct_carry" in windows


def test_the_emulator_clock_is_where_its_real_data_ends() -> None:
    from datetime import timedelta

    from pipelines.emulator.market_data import data_bounds
    from pipelines.emulator.server import DATA_END
    from pipelines.status import judgement_time

    for symbol in ("perpetual-BTC-USDT:USDT", "perpetual-ETH-USDT:USDT"):
        last_hour_open = data_bounds("binance-futures", symbol)[1]
        assert last_hour_open.replace(tzinfo=DATA_END.tzinfo) + timedelta(hours=1) == DATA_END
    assert judgement_time() == DATA_END  # the test session configures no vendor


def test_dg_sees_the_project(tmp_path: Path) -> None:
    out = run_command("dg", "list", "defs", "--json", env=env_for(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "daily_current_month" in out.stdout and "marts/rpt_coverage" in out.stdout
    # the home's dagster.yaml turns telemetry off: no banner
    assert "Telemetry" not in out.stderr and "telemetry" not in out.stdout


def test_make_dev_serves_without_a_warning(tmp_path: Path) -> None:
    """``make dev`` logs no WARNING: started in the checkout, Dagster said the root ``dagster.yaml``
    "will not be used", though the instance home holds a link to it; it starts in the home now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in env_for(tmp_path).items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    path = tmp_path / "dev.log"
    with path.open("w") as log:  # Dagster logs to stdout, warnings may go to stderr
        proc = subprocess.Popen(
            ["make", "dev", f"DEV_PORT={port}"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while "Serving dagster-webserver" not in path.read_text() and proc.poll() is None:
                assert time.monotonic() < deadline, path.read_text()[-2000:]
                time.sleep(1)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # make, dg dev, the webserver, the daemon, code servers
            proc.wait(timeout=30)
    logged = path.read_text()
    assert "Serving dagster-webserver" in logged and "Launching Dagster services" in logged, logged[-2000:]
    assert "WARNING" not in logged and "will not be used" not in logged, logged
