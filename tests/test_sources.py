"""The source registry: a vendor is its folder, and every consumer derives from the registry."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from pipelines import sources
from pipelines.cli import build_parser, plan_backfill
from pipelines.emulator.server import Emulator
from pipelines.models import build_views
from pipelines.partitions import monthly_partitions
from pipelines.sources.assets import build_source_assets
from pipelines.sources.source import VENDOR_TAG, Loaded, LoadRequest, RawAsset, Source
from pipelines.universe import UniverseError, load_universe
from pipelines.warehouse.lake import Warehouse

REPO = Path(__file__).resolve().parent.parent
SOURCES = REPO / "pipelines" / "sources"
# every vendor folder has the same shape (written out here, not read from a folder)
SHAPE = {"__init__.py", "README.md", "source.py", "client.py", "load.py", "emulator.py"}


def vendor_folders() -> set[str]:
    return {p.name for p in SOURCES.iterdir() if p.is_dir() and p.name != "__pycache__"}


def test_the_registry_lists_exactly_the_vendor_folders_in_their_declared_order() -> None:
    assert set(sources.names()) == vendor_folders()
    assert {"aperiodic", "kaiko", "cayolargo"} <= vendor_folders()
    orders = [source.order for source in sources.sources()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    assert sources.names()[:3] == ("aperiodic", "kaiko", "cayolargo")  # the load order messages use


@pytest.mark.parametrize("vendor", sorted(vendor_folders()))
def test_every_vendor_folder_has_the_same_shape(vendor: str) -> None:
    files = {p.name for p in (SOURCES / vendor).iterdir() if p.name != "__pycache__"}
    assert files == SHAPE


def test_consumers_derive_from_the_registry() -> None:
    from pipelines.definitions import defs

    backfill = build_parser()._subparsers._group_actions[0].choices["backfill"]  # type: ignore[union-attr]
    vendor = next(a for a in backfill._actions if a.dest == "vendor")
    assert tuple(vendor.choices) == sources.names()
    assert set(sources.names()) <= set(defs.resources or {})
    graph = defs.resolve_asset_graph()
    raw = [graph.get(key) for key in graph.get_all_asset_keys() if key.path[0] == "raw"]
    # every source asset is tagged with its vendor (its group), which --vendor selects by
    assert all(node.tags.get(VENDOR_TAG) == node.group_name for node in raw)
    # the demo universe configures the three: aperiodic's four metrics, one asset each for the others
    tagged = sorted(node.tags[VENDOR_TAG] for node in raw)
    assert tagged == ["aperiodic"] * 4 + ["cayolargo", "kaiko"]
    with Emulator() as emu:
        assert len(emu.vendors) == len(sources.names())
        assert emu.base_url("aperiodic") == f"{emu.url}/api/v1"
        assert emu.base_url("kaiko") == emu.base_url("cayolargo") == emu.url
    assert sources.env_prefixes() == tuple(f"{name.upper()}_" for name in sources.names())


def _fourth(request: LoadRequest) -> Loaded:
    raise AssertionError("not run here")


FOURTH = Source(
    name="fourth",
    label="Fourth",
    order=4,
    parse_section=lambda section, where: section,
    raw_assets=lambda section: [RawAsset("price", "a fourth vendor's prices", frozenset({"duckdb"}))],
    load=_fourth,
    resource=lambda: None,
    emulator_handler=lambda emulator: None,
)


def test_a_fourth_source_reaches_the_universe_the_plan_and_the_assets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What one more folder's SOURCE gives, with no shared edit: its universe section is accepted,
    ``--vendor fourth`` is planned, and its asset is built and tagged."""
    universe_file = tmp_path / "universe.yaml"
    universe_file.write_text("start_month: 2026-01\nfourth:\n  anything: 1\n")
    with pytest.raises(UniverseError, match="unknown section"):
        load_universe(universe_file)
    everything = (*sources.sources(), FOURTH)
    monkeypatch.setattr(sources, "sources", lambda: everything)
    monkeypatch.setattr(sources, "names", lambda: tuple(s.name for s in everything))
    universe = load_universe(universe_file)
    assert universe.section("fourth") == {"anything": 1}
    assert plan_backfill(universe, "fourth", []) == {"fourth": []}
    assets = build_source_assets(FOURTH, universe, monthly_partitions(date(2026, 1, 1)))
    (spec,) = [spec for a in assets for spec in a.specs]
    assert spec.key == dg.AssetKey(["raw", "fourth_price"])
    assert spec.tags[VENDOR_TAG] == "fourth" and spec.group_name == "fourth"


def test_a_fourth_sources_sql_folder_takes_its_rows_to_the_shared_observations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source's SQL is read from its SOURCE: the warehouse creates its raw table (partitioned by
    month, with no list to extend), the model runner builds its staging view, and the relation it
    declares joins intermediate.int_price_observations, with no edit to a shared file."""
    folder = tmp_path / "sql" / "fourth"
    (folder / "staging").mkdir(parents=True)
    (folder / "raw.sql").write_text(
        "create table if not exists raw.fourth_price (\n    venue varchar not null,\n"
        "    instrument_key varchar not null,\n    month date not null,\n"
        "    ts timestamptz not null,\n    mark_price double\n);\n"
    )
    (folder / "staging" / "stg_fourth__price.sql").write_text(
        "select 'fourth' as vendor, venue, instrument_key, 'exchange' as timestamp_type, '1h' as interval,\n"
        "    ts, mark_price / 100 as mark_price\nfrom raw.fourth_price\n"
    )
    fourth = replace(
        FOURTH, sql_dir=folder, observations={"int_price_observations": "staging.stg_fourth__price"}
    )
    everything = (*sources.sources(), fourth)
    monkeypatch.setattr(sources, "sources", lambda: everything)
    assert fourth.raw_tables() == ["raw.fourth_price"]
    warehouse = Warehouse(tmp_path / "lake.sqlite")
    with warehouse.writer() as con:
        build_views(con)  # the models' layer creates every source's raw tables it reads
        con.execute(
            "insert into raw.fourth_price values ('deribit', 'perpetual-BTC-USD:BTC', date '2026-03-01', "
            "timestamptz '2026-03-01 00:00:00+00', 6412.5)"
        )
        build_views(con)
        assert con.execute(
            "select vendor, venue, instrument_key, interval, mark_price, index_price "
            "from intermediate.int_price_observations"
        ).fetchall() == [("fourth", "deribit", "perpetual-BTC-USD:BTC", "1h", 64.125, None)]
        partitions = con.execute(
            "select count(*) from __ducklake_metadata_lake.ducklake_partition_info p "
            "join __ducklake_metadata_lake.ducklake_table t using (table_id) where t.table_name = 'fourth_price'"
        ).fetchone()
        assert partitions == (1,)


def test_every_declared_observations_relation_feeds_a_shared_union_model() -> None:
    shared = {p.stem: p.read_text() for p in (REPO / "sql" / "intermediate").glob("*.sql")}
    for source in sources.sources():
        assert source.observations, source.name
        for model in source.observations:
            assert "{sources}" in shared.get(model, ""), (source.name, model)
