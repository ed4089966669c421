"""In the lake, the shared union models (``{sources}``) read only the vendors whose raw tables hold
data, and keep the shape of the union of every source."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines import models, sources
from pipelines.models import build_views, mart_catalog
from pipelines.warehouse.lake import Warehouse, schema_sql
from tests.conftest import insert_aperiodic_hour

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
        insert_aperiodic_hour(con)
        build_views(con)
        assert shapes(con) == every_source
        union = con.execute(
            "select sql from duckdb_views() where schema_name = 'intermediate' "
            "and view_name = 'int_price_observations'"
        ).fetchone()
        assert union and "stg_aperiodic__derivative_price" in union[0] and "kaiko" not in union[0]
        rows = con.execute("select vendor, mark_price from intermediate.int_price_observations").fetchall()
        assert rows == [("aperiodic", 100.5)]


def test_build_views_names_the_views_whose_definition_changed(tmp_path: Path) -> None:
    with Warehouse(tmp_path / "lake.sqlite").writer() as con:
        first = build_views(con)
        assert (
            "staging.stg_aperiodic__derivative_price" in first
            and "intermediate.int_price_observations" in first
        )
        assert all(not r.startswith("marts.") for r in first)
        assert build_views(con) == frozenset()  # replaced by the same definitions: nothing to record
        con.execute(
            "insert into raw.kaiko_derivative_price (venue, instrument_key, interval, month, ts, mark_price, "
            "loaded_at) values ('binance-futures', 'perpetual-BTC-USDT:USDT', '1h', date '2026-03-01', "
            "timestamptz '2026-03-01 00:00:00+00', 100.5, now())"
        )
        # Kaiko joins the unions it declares a relation for; the views over them keep their text
        assert "intermediate.int_price_observations" in build_views(con)


def test_the_mart_catalog_is_cached_by_the_code_and_read_back_the_same_and_old_versions_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    earlier = tmp_path / "markhouse" / "mart-catalog-0123456789abcdef.json"  # another code version's
    earlier.parent.mkdir()
    earlier.write_text("{}")
    built = mart_catalog()
    [cached] = (tmp_path / "markhouse").glob("mart-catalog-*.json")  # the earlier one removed
    assert cached != earlier
    monkeypatch.setattr(models, "build_views", None)  # a cache hit builds nothing
    assert mart_catalog() == built and "fct_price_interval" in built
    cached.write_text("{")  # a damaged file is built again
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert mart_catalog() == built
