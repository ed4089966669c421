"""The previous layout (the whole warehouse in one DuckDB file), imported once into the lake."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.warehouse.concurrency import transaction
from pipelines.warehouse.lake import LegacyWarehouseError, Warehouse, _quote, is_duckdb_file, raw_tables


def import_legacy(warehouse: Warehouse, legacy: Path) -> dict[str, int]:
    """Raw and reference rows (the SQL rebuilds marts) into an empty lake, once (``*.imported``)."""
    legacy = Path(legacy)
    if not is_duckdb_file(legacy):
        raise LegacyWarehouseError(f"{legacy} is not a DuckDB warehouse file")
    if is_duckdb_file(warehouse.path):
        raise LegacyWarehouseError(
            f"MARKHOUSE_WAREHOUSE ({warehouse.path}) is itself the old DuckDB file; point it at the new "
            f"catalog (e.g. {warehouse.path.with_suffix('.sqlite')}) and import from {warehouse.path}"
        )
    copied: dict[str, int] = {}
    with warehouse.writer(importing=True) as con:
        imported = (*raw_tables(con), "ref.instrument", "ref.vendor_instrument")
        for table in imported:
            if con.execute(f"select count(*) from {table}").fetchone() != (0,):
                raise LegacyWarehouseError(
                    f"{warehouse.path} already holds rows ({table}); import {legacy} only into an empty warehouse"
                )
        try:
            con.execute(f"attach {_quote(str(legacy))} as legacy (read_only)")
        except duckdb.Error as exc:
            raise LegacyWarehouseError(f"cannot open {legacy} (is a run still writing it?): {exc}") from exc
        sql = "select schema_name || '.' || table_name from duckdb_tables() where database_name = 'legacy'"
        present = {t for (t,) in con.execute(sql).fetchall()}
        try:
            with transaction(con):
                for table in (t for t in imported if t in present):
                    by_time = table.startswith("raw.") and table != "raw.load_log"  # the files' order
                    sql = f"insert into {table} by name select * from legacy.{table}"
                    result = con.execute(sql + (" order by month, ts" if by_time else "")).fetchone()
                    copied[table] = int(result[0]) if result else 0
        finally:
            con.execute("detach legacy")
    legacy.rename(legacy.with_name(legacy.name + ".imported"))
    return copied
