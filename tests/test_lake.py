"""The DuckLake warehouse: published snapshots, the serving file of views over parquet, time travel,
maintenance, the import of a previous-layout file and the contract checker on the new layout."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.models import refresh_marts
from pipelines.sources.aperiodic.load import Series, load_months
from pipelines.warehouse.lake import LegacyWarehouseError, Warehouse, current_snapshot, read_sql, schema_sql
from pipelines.warehouse.maintenance import data_bytes, maintain, time_travel_note
from pipelines.warehouse.serving import open_serving, publish_serving

REPO = Path(__file__).resolve().parent.parent
CHECKER = REPO.parent / "shared" / "tools" / "check_contract.py"
BTC, ETH = "perpetual-BTC-USDT:USDT", "perpetual-ETH-USDT:USDT"
BOTH = [Series("binance-futures", s, "1h", "exchange") for s in (BTC, ETH)]
MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)
# 2 instruments x 744 native hours of March, their 4h and 1d rollups
MARCH_FCT = 2 * 744 + 2 * 744 // 4 + 2 * 31


def load_and_publish(aperiodic, warehouse: Warehouse, serving: Path, months: list[date]) -> int:  # type: ignore[no-untyped-def]
    load_months(aperiodic, warehouse, BOTH, months, progress=lambda _: None)
    with warehouse.writer() as con:
        refresh_marts(con, months)
        return publish_serving(con, serving).snapshot


def count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    row = con.execute(f"select count(*) from {relation}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def env(warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    serving = tmp_path / "serving.duckdb"
    monkeypatch.setenv("MARKHOUSE_WAREHOUSE", str(warehouse.path))
    monkeypatch.setenv("MARKHOUSE_SERVING", str(serving))
    return serving


@pytest.mark.skipif(
    not CHECKER.exists(), reason=f"the shared contract checker is not beside this checkout ({CHECKER})"
)
def test_the_shared_contract_checker_reads_the_serving_file_unchanged(aperiodic, warehouse, env) -> None:  # type: ignore[no-untyped-def]
    load_and_publish(aperiodic, warehouse, env, [MARCH])
    out = subprocess.run(
        [sys.executable, str(CHECKER), str(env), "--vendor", "aperiodic"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"aperiodic: {MARCH_FCT} rows in marts.fct_price_interval" in out.stdout
    assert out.stdout.strip().endswith("0 contract problems")


def test_the_serving_file_documents_every_mart_column_as_marts_yml_does(aperiodic, warehouse, env) -> None:  # type: ignore[no-untyped-def]
    """The project's own contract check, which runs wherever the shared checker is absent: every
    mart and column that marts.yml (written from CONTRACT.md) names is in the serving file, in
    that order, with that text as its comment."""
    import yaml

    load_and_publish(aperiodic, warehouse, env, [MARCH])
    docs = yaml.safe_load((REPO / "sql" / "marts" / "marts.yml").read_text())
    with open_serving(env) as served:
        described = dict(
            served.execute(
                "select view_name, comment from duckdb_views() where schema_name = 'marts'"
            ).fetchall()
        )
        columns: dict[str, list[tuple[str, str | None]]] = {}
        for table, column, comment in served.execute(
            "select table_name, column_name, comment from duckdb_columns() where schema_name = 'marts' "
            "order by table_name, column_index"
        ).fetchall():
            columns.setdefault(table, []).append((column, comment))
    assert set(described) == set(docs)
    for table, spec in docs.items():
        assert described[table] == spec["description"], table
        assert columns[table] == list(spec["columns"].items()), table


def test_the_serving_file_holds_views_of_the_published_rows_and_leaves_out_deleted_ones(
    aperiodic, warehouse, env
) -> None:  # type: ignore[no-untyped-def]
    load_months(aperiodic, warehouse, BOTH, [MARCH, APRIL], progress=lambda _: None)
    with warehouse.writer() as con:
        # ten BTC hours deleted in place: DuckLake writes a delete file beside March's data file
        con.execute(
            "delete from raw.aperiodic_derivative_price where instrument_key = ? and ts < '2026-03-01 10:00:00+00'",
            [BTC],
        )
        deletes = con.execute(
            "select count(*) from ducklake_list_files('lake', 'aperiodic_derivative_price', schema => 'raw') "
            "where delete_file is not null"
        ).fetchone()
        assert deletes == (1,)
        files = dict(
            con.execute(
                "select data_file, delete_file from ducklake_list_files('lake', 'aperiodic_derivative_price', "
                "schema => 'raw')"
            ).fetchall()
        )
        refresh_marts(con, [MARCH, APRIL])
        published = publish_serving(con, env)
    with open_serving(env) as served:
        row = served.execute(
            "select sql from duckdb_views() where schema_name = 'raw' and view_name = 'aperiodic_derivative_price'"
        ).fetchone()
    assert row is not None
    # only March's file (the one with deletes) goes through the anti join; April's is a plain scan
    plain, with_deletes = row[0].split(" UNION ALL ")
    (march,) = [d for d, x in files.items() if x]
    (april,) = [d for d, x in files.items() if not x]
    assert april in plain and march not in plain and "ANTI" not in plain.upper()
    assert march in with_deletes and files[march] in with_deletes and april not in with_deletes
    with open_serving(env) as served, warehouse.reader() as lake:
        assert count(served, "raw.aperiodic_derivative_price") == 2 * (744 + 720) - 10
        tables = lake.execute(
            "select schema_name || '.' || table_name from duckdb_tables() "
            "where database_name = 'lake' and schema_name <> 'meta'"
        ).fetchall()
        for (relation,) in tables:  # every table, row for row
            assert (
                served.execute(f"select * from {relation} except all select * from {relation}").fetchall()
                == []
            )
            assert count(served, relation) == count(lake, relation), relation
            lake_rows = lake.execute(f"select * from {relation} order by all").fetchall()
            assert served.execute(f"select * from {relation} order by all").fetchall() == lake_rows, relation
        assert count(served, "marts.fct_price_interval") == published.tables["marts.fct_price_interval"]
        assert served.execute("select snapshot_id from meta.publication").fetchone() == (published.snapshot,)
        # the file names parquet files; it holds no rows itself
        assert served.execute(
            "select count(*) from duckdb_tables() where schema_name <> 'meta'"
        ).fetchone() == (0,)
    assert env.stat().st_size < 2**20  # views and a one-row table, whatever the data


def test_readers_see_the_published_snapshot_not_a_run_in_progress(aperiodic, warehouse, env, capsys) -> None:  # type: ignore[no-untyped-def]
    published = load_and_publish(aperiodic, warehouse, env, [MARCH])
    load_months(aperiodic, warehouse, BOTH, [APRIL], progress=lambda _: None)  # committed, not published
    with warehouse.writer() as con:
        assert count(con, "raw.aperiodic_derivative_price") == 2 * (744 + 720)
        assert current_snapshot(con) > published
    with warehouse.reader() as con:
        assert count(con, "raw.aperiodic_derivative_price") == 2 * 744
        assert count(con, "marts.fct_price_interval") == MARCH_FCT
    with open_serving(env) as con:
        assert count(con, "raw.aperiodic_derivative_price") == 2 * 744
    assert main(["status", "--as-of", "2026-04-01T06:00"]) == 0
    assert f"published snapshot {published} at " in capsys.readouterr().out
    assert main(["snapshots"]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [int(cols[0]) for cols in listed if cols[-1] == "yes"] == [published]
    every = warehouse.snapshots()
    assert main(["snapshots", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split()[0]) for line in lines[1:3]] == [s.snapshot_id for s in every[-2:]]
    assert lines[3:] == [f"(the newest 2 of {len(every)}; --limit N or --all for more)"]
    assert main(["snapshots", "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + len(every)


def test_time_travel_queries_and_exports_the_marts_as_of_an_earlier_snapshot(
    aperiodic, warehouse, env, tmp_path, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    first = load_and_publish(aperiodic, warehouse, env, [MARCH])
    with warehouse.writer() as con:  # a later run changes March's marks
        con.execute("update raw.aperiodic_derivative_price set mark_price = mark_price * 2")
        refresh_marts(con, [MARCH])
        publish_serving(con, env)
    sql = f"select sum(mark_price) from marts.fct_price_interval where interval = '1h' and instrument_key = '{BTC}'"
    with warehouse.reader(snapshot=first) as con:
        before = con.execute(sql).fetchone()
    with warehouse.reader() as con:
        after = con.execute(sql).fetchone()
    assert before is not None and after is not None
    assert after[0] == pytest.approx(2 * before[0])
    assert main(["query", "--snapshot", str(first), sql]) == 0
    assert capsys.readouterr().out.splitlines()[1] == str(before[0])
    out = tmp_path / "march.parquet"
    assert (
        main(["query", "--snapshot", str(first), "select * from marts.fct_price_interval", "--out", str(out)])
        == 0
    )
    exported = duckdb.sql(
        f"select count(*), sum(mark_price) filter (interval = '1h' and instrument_key = '{BTC}') from '{out}'"
    )
    rows, marks = exported.fetchone()  # type: ignore[misc]
    assert rows == MARCH_FCT and marks == pytest.approx(before[0])
    capsys.readouterr()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a relative --out lands in the working folder, and the line says where
    assert main(["query", "select 1 as one", "--out", "one.csv"]) == 0
    assert capsys.readouterr().out == f"wrote {elsewhere / 'one.csv'}\n"
    assert (elsewhere / "one.csv").read_text().splitlines() == ["one", "1"]


def test_maintenance_after_ten_reloads_of_a_month_keeps_the_data_folder_near_one_load(
    aperiodic, warehouse, env, capsys
) -> None:  # type: ignore[no-untyped-def]
    load_and_publish(aperiodic, warehouse, env, [MARCH])
    after_one = data_bytes(warehouse.data_path)
    for _ in range(9):
        last = load_and_publish(aperiodic, warehouse, env, [MARCH])
    assert data_bytes(warehouse.data_path) > 5 * after_one  # every reload's files kept for time travel
    with warehouse.writer() as con:  # the catalog's sizes: on disk, every file is current or replaced
        held, replaced = con.execute(
            read_sql("warehouse/time_travel_bytes"), {"cutoff": datetime.now(UTC)}
        ).fetchone()
        assert held + replaced == data_bytes(warehouse.data_path) and held <= 1.1 * after_one
        assert time_travel_note(con, timedelta(hours=1)) is None  # nothing replaced an hour ago
        note = time_travel_note(con, timedelta(0))
    assert note == (
        f"note: {replaced / 2**20:,.1f} MiB of replaced files older than 0 h are kept for time travel, more "
        f"than the current data ({held / 2**20:,.1f} MiB); `markhouse maintain` frees them (so does the "
        "nightly_maintenance schedule, with the Dagster daemon)"
    )
    assert main(["maintain", "--retention-hours", "0"]) == 0
    assert "expired" in capsys.readouterr().out
    assert data_bytes(warehouse.data_path) <= 1.1 * after_one
    with warehouse.writer() as con:  # maintained: nothing replaced is left, no note
        assert time_travel_note(con, timedelta(0)) is None
    with warehouse.reader() as con:  # the published state survived, whole
        assert count(con, "raw.aperiodic_derivative_price") == 2 * 744
        assert count(con, "marts.fct_price_interval") == MARCH_FCT
    with open_serving(env) as con:  # and the serving file names files that still exist
        assert count(con, "marts.fct_price_interval") == MARCH_FCT
        assert count(con, "raw.aperiodic_derivative_price") == 2 * 744
    snapshots = warehouse.snapshots()
    assert any(s.published for s in snapshots) and len(snapshots) <= 4
    assert all(s.snapshot_id >= last for s in snapshots)


def test_maintenance_keeps_recent_snapshots_within_the_retention(aperiodic, warehouse, env) -> None:  # type: ignore[no-untyped-def]
    first = load_and_publish(aperiodic, warehouse, env, [MARCH])
    load_and_publish(aperiodic, warehouse, env, [MARCH])
    result = maintain(warehouse, env, timedelta(hours=1))
    assert result.expired == 0
    with warehouse.reader(snapshot=first) as con:  # still there to travel to
        assert count(con, "raw.aperiodic_derivative_price") == 2 * 744


def legacy_file(path: Path) -> None:
    """A warehouse file of the previous layout: the same schema in one DuckDB file, 48 hourly rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(schema_sql())
        con.execute(
            "insert into raw.aperiodic_derivative_price (venue, instrument_key, timestamp_type, interval, month, ts, "
            "last_price, index_price, mark_price, loaded_at) "
            "select 'binance-futures', ?, 'exchange', '1h', date '2026-03-01', "
            "timestamptz '2026-03-01 00:00:00+00' + i * interval 1 hour, 100 + i, 100 + i, 100 + i, now() "
            "from range(48) t(i)",
            [BTC],
        )
        con.execute(
            "insert into ref.instrument values ('binance-futures', ?, 'perpetual', 'BTC', 'USDT', 'USDT', null, 1, 8)",
            [BTC],
        )
    finally:
        con.close()


def test_a_previous_layout_file_is_named_with_the_command_then_imported_once(
    warehouse, env, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    default = Warehouse(warehouse.path.with_name("markhouse.sqlite"))
    legacy_file(default.legacy_path)
    with (
        pytest.raises(LegacyWarehouseError, match=r"`markhouse import-duckdb .*markhouse\.duckdb`"),
        default.writer(),
    ):
        pass
    old = Warehouse(default.legacy_path)
    with pytest.raises(LegacyWarehouseError, match=r"previous layout.*markhouse import-duckdb"), old.writer():
        pass
    monkeypatch.setenv("MARKHOUSE_WAREHOUSE", str(default.path))
    assert main(["status"]) == 5  # ExitCode.WAREHOUSE
    assert "markhouse import-duckdb" in capsys.readouterr().err
    assert main(["import-duckdb"]) == 0
    assert "imported         48 rows into raw.aperiodic_derivative_price" in capsys.readouterr().out
    assert (
        not default.legacy_path.exists()
        and default.legacy_path.with_name("markhouse.duckdb.imported").exists()
    )
    with default.reader() as con:
        assert con.execute(
            "select count(*), sum(mark_price) from marts.fct_price_interval where interval = '1h'"
        ).fetchone() == (48, sum(100 + i for i in range(48)))
        assert count(con, "ref.instrument") == 1
    assert main(["import-duckdb", str(default.legacy_path.with_name("markhouse.duckdb.imported"))]) == 5
    assert "only into an empty warehouse" in capsys.readouterr().err


# Loads one instrument's March, and waits inside its transaction until the other loader has
# started: one host writes one run at a time (pipelines.warehouse.concurrency), so the other waits for this
# commit, then makes its own.
SIDE_BY_SIDE = """
import sys, time
from datetime import date
from pathlib import Path
from pipelines.emulator.server import Emulator
from pipelines.sources.aperiodic.client import AperiodicClient
from pipelines.sources.aperiodic.load import Series, load_months
from pipelines.warehouse.lake import Warehouse

catalog, me, other = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

me.touch()

def meet():
    deadline = time.monotonic() + 60
    while not other.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the other loader never started")
        time.sleep(0.05)

with Emulator() as emu:
    client = AperiodicClient(emu.base_url("aperiodic"), emu.api_key)
    series = [Series("binance-futures", sys.argv[4], "1h", "exchange")]
    load_months(client, Warehouse(catalog), series, [date(2026, 3, 1)], before_commit=meet, progress=lambda _: None)
print("committed", flush=True)
"""


def test_two_loaders_write_side_by_side_and_both_commits_land(warehouse, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with warehouse.writer():  # the catalog exists (its first writer creates it alone)
        pass
    loaders = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                SIDE_BY_SIDE,
                str(warehouse.path),
                str(tmp_path / me),
                str(tmp_path / other),
                key,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for me, other, key in (("a", "b", BTC), ("b", "a", ETH))
    ]
    outs = [p.communicate(timeout=180) for p in loaders]
    for p, (out, err) in zip(loaders, outs, strict=True):
        assert p.returncode == 0 and out.strip() == "committed", err[-2000:]
    with warehouse.writer() as con:  # both instrument-months whole, nothing doubled
        assert dict(
            con.execute(
                "select instrument_key, count(*) from raw.aperiodic_derivative_price group by all"
            ).fetchall()
        ) == {BTC: 744, ETH: 744}
        assert dict(con.execute("select instrument_key, rows from raw.load_log").fetchall()) == {
            BTC: 744,
            ETH: 744,
        }


def test_a_window_too_big_for_the_memory_limit_spills_beside_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer under a small buffer pool keeps a table larger than the pool by spilling to the
    warehouse's own staging folder, not to `.tmp` in the folder the command runs in."""
    monkeypatch.chdir(tmp_path)
    warehouse = Warehouse(tmp_path / "lake" / "markhouse.sqlite", memory_limit="64MB")
    with warehouse.writer() as con:
        # 8M random doubles: 64 MB of data before any overhead, more than the pool holds
        con.execute("create temp table big as select random() as x from range(8000000)")
        spilled = con.execute("select path, size from duckdb_temporary_files()").fetchall()
        assert con.execute("select count(*) from big").fetchone() == (8_000_000,)
    assert spilled and sum(size for _, size in spilled) > 0
    assert all(Path(path).parent == tmp_path / "lake" / ".staging" / "duckdb-spill" for path, _ in spilled)
    assert not (tmp_path / ".tmp").exists()
    assert not (tmp_path / "lake" / ".staging" / "duckdb-spill").exists()  # DuckDB removed it on close
