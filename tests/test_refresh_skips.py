"""A mart that needs options or dated futures (``-- needs kind:``) is not refreshed while the
warehouse lists none and the mart holds no rows; one that holds rows still has its window replaced."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from pipelines.models import mart_models, refresh_marts
from pipelines.warehouse.lake import Warehouse
from tests.conftest import insert_aperiodic_hour

MARCH = date(2026, 3, 1)
NEEDY = {"fct_option_vol": "option", "rpt_vol_smile": "option", "rpt_vol_term_structure": "option"}
NEEDY |= {"fct_carry_constant_maturity": "future"}


class Recording:
    """The connection, with every statement it was given kept."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.statements = con, list[str]()

    def execute(self, sql: str, *args: Any) -> duckdb.DuckDBPyConnection:
        self.statements.append(sql)
        return self.con.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


def test_the_models_declare_what_they_need() -> None:
    needs = {m.name: m.needs for m in mart_models() if m.needs}
    assert needs == {name: frozenset({kind}) for name, kind in NEEDY.items()}


def test_a_perpetuals_only_warehouse_skips_the_option_and_curve_marts_and_still_clears_stale_rows(
    tmp_path: Path,
) -> None:
    with Warehouse(tmp_path / "lake.sqlite").writer() as con:
        insert_aperiodic_hour(con)
        recording = Recording(con)
        refresh_marts(recording, [MARCH])  # type: ignore[arg-type]
        refreshed = {
            s.split()[2] for s in recording.statements if s.startswith(("delete from", "insert into"))
        }
        assert refreshed & {f"marts.{name}" for name in NEEDY} == set()
        assert {"marts.fct_price_interval", "marts.fct_carry", "marts.rpt_coverage"} <= refreshed
        intervals = con.execute("select interval from marts.fct_price_interval order by all").fetchall()
        assert intervals == [("1d",), ("1h",), ("4h",)]  # the hour, and its 4h and 1d rollups
        # a row left from when options were listed: the mart holds rows, so its window is replaced
        con.execute(
            "insert into marts.fct_option_vol (vendor, venue, instrument_key, interval, ts) values "
            "('kaiko', 'okx-options', 'option-BTC-USD:BTC-20260327-80000-C', '1h', "
            "timestamptz '2026-03-02 00:00:00+00')"
        )
        recording = Recording(con)
        refresh_marts(recording, [MARCH])  # type: ignore[arg-type]
        assert any("delete from marts.fct_option_vol " in s for s in recording.statements)
        assert con.execute("select count(*) from marts.fct_option_vol").fetchone() == (0,)
