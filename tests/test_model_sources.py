"""In the lake, the shared union models (``{sources}``) read only the vendors whose raw tables hold
data, and keep the shape of the union of every source."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines import sources
from pipelines.models import build_views
from pipelines.warehouse.lake import Warehouse, schema_sql

UNION_MODELS = sorted({f"intermediate.{name}" for s in sources.sources() for name in s.observations})


def shapes(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    return {v: [(c, t) for c, t, *_ in con.execute(f"describe {v}").fetchall()] for v in UNION_MODELS}


def test_a_union_model_reads_only_the_vendors_with_data_and_keeps_every_sources_columns(
    tmp_path: Path,
) -> None:
    plain = duckdb.connect()
    try:
        plain.execute("set TimeZone = 'UTC'")
        plain.execute(schema_sql())
        build_views(plain)
        every_source = shapes(plain)
    finally:
        plain.close()
    with Warehouse(tmp_path / "lake.sqlite").writer() as con:
        con.execute(
            "insert into raw.aperiodic_derivative_price (venue, instrument_key, timestamp_type, interval, "
            "month, ts, last_price, index_price, mark_price, loaded_at) values ('binance-futures', "
            "'perpetual-BTC-USDT:USDT', 'exchange', '1h', date '2026-03-01', "
            "timestamptz '2026-03-01 00:00:00+00', 101, 100, 100.5, now())"
        )
        build_views(con)
        assert shapes(con) == every_source
        union = con.execute(
            "select sql from duckdb_views() where schema_name = 'intermediate' "
            "and view_name = 'int_price_observations'"
        ).fetchone()
        assert union and "stg_aperiodic__derivative_price" in union[0] and "kaiko" not in union[0]
        rows = con.execute("select vendor, mark_price from intermediate.int_price_observations").fetchall()
        assert rows == [("aperiodic", 100.5)]
