"""Past one machine, simulated on this one: a real PostgreSQL server (pgserver) holds the lake's
catalog, a shared folder its data; separate processes with separate working folders play the
hosts. Nothing here needs the network; every server a test starts is stopped at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipelines.emulator.server import Emulator
from pipelines.models import refresh_marts
from pipelines.redaction import redact
from pipelines.sources.aperiodic.client import AperiodicClient
from pipelines.sources.aperiodic.load import Series as AperiodicSeries
from pipelines.sources.aperiodic.load import load_months as load_aperiodic
from pipelines.sources.kaiko.client import KaikoClient
from pipelines.sources.kaiko.load import Series as KaikoSeries
from pipelines.sources.kaiko.load import load_months as load_kaiko
from pipelines.sources.kaiko.source import KaikoCode
from pipelines.warehouse.lake import Warehouse
from pipelines.warehouse.serving import publish_serving
from tests.conftest import database, mart_rows, pg_cursor, run_command

REPO = Path(__file__).resolve().parent.parent
BTC = "perpetual-BTC-USDT:USDT"
MARCH = date(2026, 3, 1)
HOURS = 744  # March 2026, by the calendar
# per vendor: March's 1h rows, their 4h and 1d rollups
FCT_PER_VENDOR = HOURS + HOURS // 4 + 31

# One "host": its own working folder (cwd), the shared catalog and data path from the
# environment. It loads one vendor's March and waits inside its transaction until the other host
# is inside its own, so the two commits meet.
HOST = """
import sys, time
from datetime import date
from pathlib import Path
from pipelines.emulator.server import Emulator
from pipelines.warehouse.lake import Warehouse

vendor, me, other = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
BTC, MARCH = "perpetual-BTC-USDT:USDT", date(2026, 3, 1)

def meet():
    me.touch()
    deadline = time.monotonic() + 60
    while not other.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the other host never got inside its transaction")
        time.sleep(0.05)

warehouse = Warehouse("markhouse.sqlite")
with Emulator() as emu:
    if vendor == "aperiodic":
        from pipelines.sources.aperiodic.client import AperiodicClient
        from pipelines.sources.aperiodic.load import Series, load_months
        client = AperiodicClient(emu.base_url("aperiodic"), emu.api_key)
        series = [Series("binance-futures", BTC, "1h", "exchange")]
    else:
        from pipelines.sources.kaiko.client import KaikoClient
        from pipelines.sources.kaiko.load import Series, load_months
        from pipelines.sources.kaiko.source import KaikoCode
        client = KaikoClient(emu.base_url("kaiko"), emu.api_key)
        series = [Series("binance-futures", BTC, KaikoCode("bnce", "perpetual-future", "btcusdt"), "1h")]
    load_months(client, warehouse, series, [MARCH], before_commit=meet, progress=lambda _: None)
print("committed", flush=True)
"""

# A third process reading the latest snapshot over and over while the hosts write: what it saw.
READER = """
import json, sys
from pathlib import Path
from pipelines.warehouse.lake import Warehouse

stop = Path(sys.argv[1])
warehouse = Warehouse("markhouse.sqlite")
seen = set()
last = False
while not last:
    last = stop.exists()  # one more read after the hosts are done
    latest = warehouse.snapshots()[-1].snapshot_id
    with warehouse.reader(snapshot=latest) as con:
        seen.add(tuple(
            con.execute(f"select count(*) from raw.{t}").fetchone()[0]
            for t in ("aperiodic_derivative_price", "kaiko_derivative_price", "load_log")
        ))
print(json.dumps(sorted(seen)), flush=True)
"""


def test_two_hosts_load_different_vendors_into_one_postgres_lake_while_a_third_reads(
    postgres: object, tmp_path: Path, emulator: Emulator
) -> None:
    catalog = database(postgres, "lake_hosts")
    shared_data = tmp_path / "shared" / "lake-data"
    env = {
        **os.environ,
        "MARKHOUSE_CATALOG": catalog,
        "MARKHOUSE_DATA_PATH": str(shared_data),
        "PYTHONPATH": str(REPO),
    }
    hosts = {name: tmp_path / name for name in ("host-a", "host-b", "reader")}
    for folder in hosts.values():
        folder.mkdir()
    first = Warehouse(hosts["host-a"] / "markhouse.sqlite", catalog=catalog, data_path=str(shared_data))
    with first.writer():  # the catalog exists before the hosts start (created once, in PostgreSQL)
        pass
    assert not (hosts["host-a"] / "markhouse.sqlite").exists()  # no local catalog file

    stop = tmp_path / "hosts-done"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(stop)],
        cwd=hosts["reader"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    loaders = [
        subprocess.Popen(
            [sys.executable, "-c", HOST, vendor, str(tmp_path / me), str(tmp_path / other)],
            cwd=hosts[host],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for host, vendor, me, other in (("host-a", "aperiodic", "a", "b"), ("host-b", "kaiko", "b", "a"))
    ]
    try:
        outs = [p.communicate(timeout=240) for p in loaders]
    finally:
        stop.touch()
        seen_out, seen_err = reader.communicate(timeout=120)
    for p, (out, err) in zip(loaders, outs, strict=True):
        assert p.returncode == 0 and out.strip() == "committed", err[-3000:]
    assert reader.returncode == 0, seen_err[-3000:]
    seen = {tuple(s) for s in json.loads(seen_out)}
    # whole commits only: a vendor's month is all there with its load_log row, or not at all
    assert seen <= {(0, 0, 0), (HOURS, 0, 1), (0, HOURS, 1), (HOURS, HOURS, 2)}, seen
    assert (HOURS, HOURS, 2) in seen
    assert list(shared_data.rglob("*.parquet")), "the data files are in the shared folder"

    with first.writer() as con:  # the marts, once, after all loads
        refresh_marts(con, [MARCH])
        publish_serving(con, tmp_path / "serving.duckdb")
    with first.reader() as con:
        several = mart_rows(con)

    # the same loads in one process, one after another, into the embedded catalog
    single = Warehouse(tmp_path / "single" / "markhouse.sqlite")
    load_aperiodic(
        AperiodicClient(emulator.base_url("aperiodic"), emulator.api_key),
        single,
        [AperiodicSeries("binance-futures", BTC, "1h", "exchange")],
        [MARCH],
        progress=lambda _: None,
    )
    load_kaiko(
        KaikoClient(emulator.base_url("kaiko"), emulator.api_key),
        single,
        [KaikoSeries("binance-futures", BTC, KaikoCode("bnce", "perpetual-future", "btcusdt"), "1h")],
        [MARCH],
        progress=lambda _: None,
    )
    with single.writer() as con:
        refresh_marts(con, [MARCH])
        publish_serving(con, tmp_path / "single" / "serving.duckdb")
    with single.reader() as con:
        alone = mart_rows(con)
    assert len(several["fct_price_interval"]) == 2 * FCT_PER_VENDOR
    assert several == alone


def test_a_catalog_password_never_reaches_a_message() -> None:
    assert (
        redact("cannot open postgresql://markhouse:s3cr%40t@db.internal:5432/lake")
        == "cannot open postgresql://markhouse:***@db.internal:5432/lake"
    )
    assert redact("dbname=lake host=db password='a b' user=x") == "dbname=lake host=db password=*** user=x"
    with pytest.raises(ValueError, match="MARKHOUSE_CATALOG must be a PostgreSQL URL"):
        Warehouse("x.sqlite", catalog="/some/file.sqlite")


def test_an_object_store_data_path_needs_its_credentials_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MARKHOUSE_S3_KEY_ID", raising=False)
    lake = Warehouse(tmp_path / "markhouse.sqlite", data_path="s3://bucket/markhouse")
    assert lake.data_location == "s3://bucket/markhouse/"
    with pytest.raises(RuntimeError, match="set MARKHOUSE_S3_KEY_ID and MARKHOUSE_S3_SECRET"), lake.writer():
        pass


def test_a_cli_backfill_records_its_run_in_a_postgres_dagster_instance_and_loads_the_postgres_lake(
    postgres: object, tmp_path: Path
) -> None:
    dagster_url = database(postgres, "dagster_cli")
    catalog = database(postgres, "lake_cli")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "deploy" / "postgres" / "dagster.yaml").read_text())
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MARKHOUSE_DAGSTER_POSTGRES_URL": dagster_url,
        "MARKHOUSE_CATALOG": catalog,
        "MARKHOUSE_WAREHOUSE": str(tmp_path / "host" / "markhouse.sqlite"),
        "MARKHOUSE_SERVING": str(tmp_path / "host" / "serving.duckdb"),
        "PYTHONWARNINGS": "ignore",
    }
    command = ["backfill", "--vendor", "aperiodic", "--start", "2026-03", "--end", "2026-03"]
    out = run_command("markhouse", *command, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    with pg_cursor(dagster_url) as cur:
        cur.execute(
            "select r.status from runs r join run_tags t on t.run_id = r.run_id "
            "where t.key = 'markhouse/command' and t.value = 'backfill'"
        )
        assert cur.fetchall() == [("SUCCESS",)]
    # no run or event database in local files (what is left there: this host's compute logs)
    assert not list(home.rglob("*.db")) and not (home / "history").exists()
    lake = Warehouse(tmp_path / "host" / "markhouse.sqlite", catalog=catalog)
    with lake.reader() as con:  # the demo universe's two Aperiodic instruments, March at 1h
        assert con.execute(
            "select count(*) from marts.fct_price_interval where vendor = 'aperiodic'"
        ).fetchone() == (2 * FCT_PER_VENDOR,)
