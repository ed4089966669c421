"""A warehouse to trust for years: damaged files are found and repaired, the folder moves and copies,
a backup taken while a run writes restores, and a publish reaches new connections of a process that
holds an old one. Expected values come from a second warehouse built cleanly, never from the code
under test."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse.lake import Warehouse, WarehouseCorruptError
from pipelines.warehouse.maintenance import maintain
from pipelines.warehouse.serving import publish_serving
from tests.conftest import BIN, REPO, isolated_environment, run_command
from tests.test_reliability import marts

MONTH = ["--start", "2026-03", "--end", "2026-03"]
MART_TABLES = (
    "fct_price_interval",
    "fct_carry",
    "rpt_coverage",
    "rpt_vendor_divergence",
)  # the materialized ones


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The root of a warehouse built by one clean backfill of March 2026 (every vendor); tests copy it."""
    root = tmp_path_factory.mktemp("clean")
    done = run_command("markhouse", "backfill", *MONTH, env=isolated_environment(root))
    assert done.returncode == 0, done.stderr[-2000:]
    return root


def copy_of(clean: Path, root: Path) -> dict[str, str]:
    """``cp -a`` of the clean warehouse folder under ``root``, and the environment pointing at it."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(clean / "warehouse"), str(root / "warehouse")], check=True)
    return isolated_environment(root)


def data_file(env: dict[str, str], table: str, month: str) -> Path:
    """The one parquet file of ``table``'s ``month`` partition (found on disk, not by the code)."""
    data = Path(env["MARKHOUSE_WAREHOUSE"]).with_suffix(".data")
    folder = {"raw": f"month={month}-01", "marts": f"year={month[:4]}/month={int(month[5:])}"}[
        table.split(".")[0]
    ]
    (found,) = (data / table.replace(".", "/") / folder).glob("*.parquet")
    return found


def lake_marts(warehouse: Path, snapshot: int | None = None) -> dict[str, list[tuple]]:
    with Warehouse(warehouse).reader(snapshot=snapshot) as con:
        return {  # rpt_coverage's load time is when a month was loaded
            t: con.execute(f"select * exclude (loaded_at) from marts.{t} order by all").fetchall()
            if t == "rpt_coverage"
            else con.execute(f"select * from marts.{t} order by all").fetchall()
            for t in MART_TABLES
        }


def test_verify_names_damaged_files_and_repair_gives_back_the_clean_runs_marts(
    clean: Path, tmp_path: Path
) -> None:
    env = copy_of(clean, tmp_path)
    lost = data_file(env, "raw.aperiodic_derivative_price", "2026-03")
    lost.unlink()
    garbled = data_file(env, "marts.fct_carry", "2026-03")
    with open(garbled, "r+b") as f:  # 64 KiB of random bytes over the file's start
        f.write(os.urandom(64 * 1024))
    cut = data_file(env, "marts.rpt_vendor_divergence", "2026-03")
    size = cut.stat().st_size
    os.truncate(cut, size // 2)

    found = run_command("markhouse", "verify", env=env)
    assert found.returncode == 5, found.stderr
    assert sorted(line for line in found.stdout.splitlines() if line.startswith("damaged: ")) == [
        f"damaged: marts.fct_carry 2026-03: {garbled}: not a parquet file (its first bytes are damaged)",
        f"damaged: marts.rpt_vendor_divergence 2026-03: {cut}: {size // 2} bytes where the catalog recorded {size}",
        f"damaged: raw.aperiodic_derivative_price 2026-03: {lost}: missing",
    ]
    assert len(found.stderr.splitlines()) == 1 and "3 of " in found.stderr

    # reading a damaged file is the warehouse's exit code and one line naming the file
    read = run_command("markhouse", "query", "select max(vendor), min(ts) from marts.fct_carry", env=env)
    assert read.returncode == 5 and len(read.stderr.splitlines()) == 1 and str(garbled) in read.stderr, (
        read.stderr
    )
    read = run_command(
        "markhouse", "query", "select sum(mark_price) from raw.aperiodic_derivative_price", env=env
    )
    assert read.returncode == 5 and len(read.stderr.splitlines()) == 1 and str(lost) in read.stderr, (
        read.stderr
    )
    # maintenance verifies first, and stops naming a damaged file
    with pytest.raises(WarehouseCorruptError, match="damaged files, nothing maintained: "):
        maintain(Warehouse(env["MARKHOUSE_WAREHOUSE"]), Path(env["MARKHOUSE_SERVING"]))

    repaired = run_command("markhouse", "repair", env=env)
    assert repaired.returncode == 0, repaired.stderr[-2000:]
    assert run_command("markhouse", "verify", env=env).returncode == 0
    want = marts(clean / "warehouse" / "serving.duckdb")
    assert marts(Path(env["MARKHOUSE_SERVING"])) == want and all(want[t] for t in MART_TABLES)
    assert lake_marts(Path(env["MARKHOUSE_WAREHOUSE"])) == lake_marts(
        clean / "warehouse" / "markhouse.sqlite"
    )


def test_an_expired_snapshot_and_a_damaged_catalog_exit_5_naming_them(clean: Path, tmp_path: Path) -> None:
    env = copy_of(clean, tmp_path)
    catalog = env["MARKHOUSE_WAREHOUSE"]
    assert run_command("markhouse", "maintain", "--retention-hours", "0", env=env).returncode == 0
    expired = run_command("markhouse", "query", "--snapshot", "2", "select 1", env=env)
    assert expired.returncode == 5 and len(expired.stderr.splitlines()) == 1
    assert expired.stderr.startswith(f"markhouse: snapshot 2 of {catalog} is not held any more")
    with open(catalog, "r+b") as f:  # past SQLite's header: its pages
        f.seek(4096)
        f.write(os.urandom(40 * 1024))
    for command in (["query", "select 1"], ["verify"], ["snapshots"]):
        broken = run_command("markhouse", *command, env=env)
        assert broken.returncode == 5 and len(broken.stderr.splitlines()) == 1, broken.stderr
        assert broken.stderr.startswith(f"markhouse: cannot open the warehouse {catalog}: "), broken.stderr


def test_a_moved_warehouse_just_works_and_a_copy_is_independent(clean: Path, tmp_path: Path) -> None:
    original = copy_of(clean, tmp_path / "original")
    copied = copy_of(tmp_path / "original", tmp_path / "copy")  # cp -a of the original
    (tmp_path / "moved").mkdir()
    os.rename(tmp_path / "original" / "warehouse", tmp_path / "moved" / "warehouse")  # mv
    moved = isolated_environment(tmp_path / "moved")
    assert not Path(original["MARKHOUSE_WAREHOUSE"]).exists()
    want = lake_marts(clean / "warehouse" / "markhouse.sqlite")
    clean_status = run_command("markhouse", "status", env=isolated_environment(clean))
    for env in (moved, copied):
        assert run_command("markhouse", "verify", env=env).returncode == 0
        status = run_command("markhouse", "status", env=env)
        assert status.returncode == clean_status.returncode and "this warehouse's folder" in status.stderr
        assert lake_marts(Path(env["MARKHOUSE_WAREHOUSE"])) == want
        # the serving file reads this folder's files, none of another
        con = duckdb.connect(env["MARKHOUSE_SERVING"], read_only=True)
        sql = " ".join(
            s for (s,) in con.execute("select sql from duckdb_views() where not internal").fetchall()
        )
        con.close()
        folder = str(Path(env["MARKHOUSE_WAREHOUSE"]).parent) + "/"
        assert sql.count(".parquet") == sql.count(folder + "markhouse.data/") > 0
    # the copy writes on its own: a backfill there leaves the moved one as it was
    before = lake_marts(Path(moved["MARKHOUSE_WAREHOUSE"]))
    again = run_command("markhouse", "backfill", "--vendor", "kaiko", *MONTH, env=copied)
    assert again.returncode == 0, again.stderr[-2000:]
    assert lake_marts(Path(moved["MARKHOUSE_WAREHOUSE"])) == before
    assert run_command("markhouse", "verify", env=moved).returncode == 0


def test_a_backup_taken_while_a_backfill_writes_restores_the_published_snapshot(
    clean: Path, tmp_path: Path
) -> None:
    env = copy_of(clean, tmp_path / "live")
    writer = subprocess.Popen(
        [str(BIN / "markhouse"), "backfill", "--start", "2026-04", "--end", "2026-04"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stderr is not None
        while "running the job" not in writer.stderr.readline():  # the run is writing
            assert writer.poll() is None
        time.sleep(2)
        dest = tmp_path / "backup"
        taken = run_command("markhouse", "backup", str(dest), env=env)
        assert taken.returncode == 0, taken.stderr[-2000:]
        assert writer.poll() is None  # the writer was still at work when the backup ended
    finally:
        writer.communicate(timeout=600)
    assert writer.returncode == 0
    # restore: the folder is a warehouse of its own; point the variables at it
    restored = isolated_environment(tmp_path / "restored")
    subprocess.run(["cp", "-a", str(dest), str(tmp_path / "restored" / "warehouse")], check=True)
    assert run_command("markhouse", "verify", env=restored).returncode == 0
    assert run_command("markhouse", "summary", env=restored).returncode == 0
    published = max(
        s.snapshot_id for s in Warehouse(restored["MARKHOUSE_WAREHOUSE"]).snapshots() if s.published
    )
    assert lake_marts(Path(restored["MARKHOUSE_WAREHOUSE"])) == lake_marts(
        Path(env["MARKHOUSE_WAREHOUSE"]), published
    )


def test_a_new_connection_sees_each_publication_while_an_old_one_stays_open(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    serving = tmp_path / "serving.duckdb"
    with warehouse.writer() as con:
        con.execute("create table main.t (v integer)")

    def publish(value: int) -> None:
        with warehouse.writer() as con:
            con.execute("delete from main.t")
            con.execute("insert into main.t values (?)", [value])
            publish_serving(con, serving)

    def read(con: duckdb.DuckDBPyConnection) -> int:
        row = con.execute("select v from main.t").fetchone()
        assert row is not None
        return int(row[0])

    publish(1)
    held = duckdb.connect(str(serving), read_only=True)  # a connection a process keeps open
    try:
        for value in (2, 3, 4):
            publish(value)
            fresh = duckdb.connect(str(serving), read_only=True)
            assert (read(fresh), read(held)) == (value, 1)
            fresh.close()
    finally:
        held.close()
    files = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("serving."))
    assert len(files) == 3 and serving.is_symlink()  # the link, the current file and the previous one


def test_a_backfill_that_runs_out_of_disk_leaves_the_published_snapshot_whole(
    clean: Path, tmp_path: Path
) -> None:
    """No file may grow past 1 MiB in the run's process (RLIMIT_FSIZE: a write past it fails as on a
    full disk): the marts' month files cannot be written. The published snapshot stays what it
    was, every file it names is sound, and the next run (with room) publishes a clean run's marts."""
    env = copy_of(clean, tmp_path)
    want = lake_marts(clean / "warehouse" / "markhouse.sqlite")

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of killing

    run = subprocess.run(
        [str(BIN / "markhouse"), "backfill", *MONTH],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=full_disk,
    )
    data = str(Path(env["MARKHOUSE_WAREHOUSE"]).with_suffix(".data"))
    assert run.returncode == 5 and f'Could not write file "{data}/' in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert lake_marts(Path(env["MARKHOUSE_WAREHOUSE"])) == want
    assert run_command("markhouse", "verify", env=env).returncode == 0
    again = run_command("markhouse", "backfill", *MONTH, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert lake_marts(Path(env["MARKHOUSE_WAREHOUSE"])) == want
