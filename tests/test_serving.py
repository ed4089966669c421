"""The serving copy: BI readers (SQLAlchemy + duckdb-engine) and a writing backfill never block each
other, and readers always see one published state whole."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import sqlalchemy as sa

from pipelines.models import refresh_marts
from pipelines.sources.aperiodic.load import Series, load_months
from pipelines.warehouse.serving import SERVING_STORAGE_VERSION, publish_serving
from tests.conftest import run_command

REPO = Path(__file__).resolve().parent.parent
BOTH = [
    Series("binance-futures", s, "1h", "exchange")
    for s in ("perpetual-BTC-USDT:USDT", "perpetual-ETH-USDT:USDT")
]
MARTS = (
    "dim_instrument",
    "map_vendor_instrument",
    "fct_price_interval",
    "fct_carry",
    "rpt_coverage",
    "rpt_vendor_divergence",
    "rpt_mark_last_gap",
    "rpt_term_structure",
)

# Loads April and May, rebuilds the marts and publishes, pausing inside the load transaction
# until told to go on (a line on stdin).
WRITER = textwrap.dedent(
    """
    import sys
    from datetime import date
    from pathlib import Path
    from pipelines.emulator.server import Emulator
    from pipelines.models import refresh_marts
    from pipelines.sources.aperiodic.client import AperiodicClient
    from pipelines.sources.aperiodic.load import Series, load_months
    from pipelines.warehouse.lake import Warehouse
    from pipelines.warehouse.serving import publish_serving

    def pause():
        print("writing", flush=True)
        sys.stdin.readline()

    wh = Warehouse(sys.argv[1])
    months = [date(2026, 4, 1), date(2026, 5, 1)]
    with Emulator() as emu:
        client = AperiodicClient(emu.base_url("aperiodic"), emu.api_key)
        series = [Series("binance-futures", s, "1h", "exchange")
                  for s in ("perpetual-BTC-USDT:USDT", "perpetual-ETH-USDT:USDT")]
        load_months(client, wh, series, months, before_commit=pause, progress=lambda _: None)
    with wh.writer() as con:
        refresh_marts(con, months)
        publish_serving(con, Path(sys.argv[2]))
    print("published", flush=True)
    """
)


def published_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        value = conn.execute(sa.text("select row_counts from meta.publication")).scalar_one()
        return value if isinstance(value, dict) else json.loads(value)


def mart_counts(engine: sa.Engine) -> dict[str, int]:
    """Every relation in schema marts, counted through the BI driver."""
    with engine.connect() as conn:
        names = (
            conn.execute(
                sa.text("select table_name from information_schema.tables where table_schema = 'marts'")
            )
            .scalars()
            .all()
        )
        counts = {
            f"marts.{m}": conn.execute(sa.text(f"select count(*) from marts.{m}")).scalar_one() for m in names
        }
    assert set(MARTS) <= {k.split(".")[1] for k in counts}
    return counts


def test_bi_reader_sees_the_last_published_state_while_a_backfill_writes(
    aperiodic, warehouse, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    serving = tmp_path / "serving.duckdb"
    load_months(aperiodic, warehouse, BOTH, [date(2026, 3, 1)], progress=lambda _: None)
    with warehouse.writer() as con:
        refresh_marts(con, [date(2026, 3, 1)])
        publish_serving(con, serving)
    engine = sa.create_engine(f"duckdb:///{serving}", connect_args={"read_only": True})
    before = mart_counts(engine)
    published = published_counts(engine)
    assert {"marts.fct_price_interval", "marts.fct_carry", "marts.rpt_coverage"} <= set(published)
    assert {k: before[k] for k in published} == published
    assert before["marts.fct_price_interval"] == 2 * 744 * (1 + 1 / 4) + 2 * 31  # 1h + 4h + 1d rows

    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(warehouse.path), str(serving)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "writing"  # the writer holds the warehouse now
        with engine.connect() as held:  # a dashboard keeps a connection open through the swap
            assert mart_counts(engine) == before  # no lock error, the last published state
            writer.stdin.write("go\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "published"
            assert (
                held.execute(sa.text("select count(*) from marts.fct_price_interval")).scalar_one()
                == (before["marts.fct_price_interval"])
            )  # the open connection still reads its (old) snapshot whole
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    engine.dispose()
    # the URI form the README gives for Superset
    after = mart_counts(sa.create_engine(f"duckdb:///{serving}?access_mode=read_only"))
    assert after["marts.fct_price_interval"] == 2 * (744 + 720 + 384) * (1 + 1 / 4) + 2 * (31 + 30 + 16)


def test_a_reader_holding_the_serving_copy_does_not_block_a_backfill(tmp_path: Path) -> None:
    env_serving = tmp_path / "serving.duckdb"
    env = {
        "MARKHOUSE_WAREHOUSE": str(tmp_path / "wh.sqlite"),
        "MARKHOUSE_SERVING": str(env_serving),
        "DAGSTER_HOME": str(tmp_path / "dh"),
        "PATH": str(Path(sys.executable).parent),
        "PYTHONWARNINGS": "ignore",
    }
    (tmp_path / "dh").mkdir()
    args = ["backfill", "--vendor", "aperiodic", "--start", "2026-04", "--end", "2026-04"]
    first = run_command("markhouse", *args, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    reader = duckdb.connect(str(env_serving), read_only=True)  # a BI tool left open
    try:
        assert reader.execute("select count(*) from marts.dim_instrument").fetchone() == (2,)
        second = run_command("markhouse", *args[:-4], "--start", "2026-05", "--end", "2026-05", env=env)
        assert second.returncode == 0, second.stderr[-2000:]
        assert "published" in second.stderr
    finally:
        reader.close()


def test_serving_copy_uses_the_compatible_storage_version(aperiodic, warehouse, tmp_path) -> None:  # type: ignore[no-untyped-def]
    serving = tmp_path / "s.duckdb"
    with warehouse.writer() as con:
        refresh_marts(con, [date(2026, 3, 1)])
        publish_serving(con, serving)
    con = duckdb.connect()
    con.execute(f"attach '{serving}' as s (read_only)")
    version = con.execute(
        "select tags['storage_version'] from duckdb_databases() where database_name = 's'"
    ).fetchone()
    con.close()
    assert SERVING_STORAGE_VERSION == "v1.0.0"
    assert version is not None and str(version[0]).startswith("v1.0")
    assert not list(tmp_path.glob(".s.duckdb.*.tmp"))  # no half-written file left beside it
