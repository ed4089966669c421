"""Dagster assets for the BI-facing marts, rebuilt from ``sql/`` for the months a run touched and
published; and the report drawn from them, as its own asset (it never holds up the marts)."""

import base64
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from pipelines.models import mart_catalog, refresh_marts
from pipelines.partitions import run_months
from pipelines.progress import to_run_log
from pipelines.resources import WarehouseResource
from pipelines.sources.assets import FAILED_UNITS, describe, run_outcome
from pipelines.warehouse.lake import loaded_months
from pipelines.warehouse.serving import publish_serving

if TYPE_CHECKING:
    from pipelines.report import Report

MARTS = (
    "fct_price_interval",
    "fct_carry",
    "rpt_coverage",
    "rpt_vendor_divergence",
    "rpt_mark_last_gap",
    "rpt_term_structure",
    "fct_carry_constant_maturity",
    "fct_futures_rolled",
    "rpt_futures_rolls",
    "fct_funding_realized",
    "rpt_carry_trade",
    "dim_instrument",
    "map_vendor_instrument",
)


THUMBNAIL_WIDTH = 760  # px: readable in the UI's markdown dialog, still small in the event log


def report_metadata(report: "Report") -> "dict[str, dg.RawMetadataValue]":
    """The report's path and each chart as a small PNG in markdown (the Dagster UI renders data-URI
    images), scaled down from the report's PNG with Pillow (drawing again would cost as much)."""
    from PIL import Image

    metadata: dict[str, dg.RawMetadataValue] = {
        "report": dg.MetadataValue.path(str(report.html_path.resolve()))
    }
    for chart in report.charts:
        image = Image.open(report.png_paths[chart.name])
        image.thumbnail((THUMBNAIL_WIDTH, THUMBNAIL_WIDTH * 4))
        buffer = io.BytesIO()
        image.convert("RGB").quantize(colors=96).save(buffer, format="PNG")  # a palette: a third the size
        png = base64.b64encode(buffer.getvalue()).decode("ascii")
        metadata[f"chart_{chart.name}"] = dg.MetadataValue.md(
            f"**{chart.title}** (marts.{chart.mart}): {chart.caption}\n\n![{chart.title}](data:image/png;base64,{png})"
        )
    return metadata


def draw_report(serving_path: Path, warn: Callable[[str], None]) -> "Report | None":
    """Write the report; None, with a warning naming the cause, when it cannot be drawn: the marts
    are already published, and the pictures are only a view of them."""
    from pipelines.report import write_report  # matplotlib: loaded when a run draws, not with the code

    try:
        return write_report(serving_path)
    except Exception as exc:
        warn(f"report not written: {type(exc).__name__}: {exc}")
        return None


def build_report_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=["report"],
        group_name="report",
        deps=[dg.AssetKey(["marts", name]) for name in MARTS],
        kinds={"html", "png"},
        backfill_policy=dg.BackfillPolicy.single_run(),  # a month range of the refresh job is one run
        description="The marts as charts: one self-contained HTML page and a PNG per chart, beside the "
        "serving file. Drawn after the marts in the scheduled refresh; `markhouse backfill --report` "
        "and `markhouse report` draw it from the command line.",
    )
    def report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        started = time.perf_counter()
        drawn = draw_report(Path(warehouse.serving_path), context.log.warning)
        if drawn is None:
            return dg.MaterializeResult(metadata={"drawn": False})
        context.log.info(f"report {drawn.html_path} written in {time.perf_counter() - started:.2f}s")
        return dg.MaterializeResult(metadata=report_metadata(drawn))

    return report


def build_mart_assets(upstream: list[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    """The marts as one step, not partitioned: whole-history tables refreshed for the run's months
    (``run_months``), recorded once per run (Dagster stores each materialization, ~10 ms apiece)."""
    catalog = mart_catalog()

    @dg.multi_asset(
        name="marts",
        group_name="marts",
        specs=[
            dg.AssetSpec(
                ["marts", name],
                deps=upstream,
                kinds={"duckdb", "sql"},
                description=catalog[name][0],
                metadata={
                    "dagster/column_schema": dg.TableSchema(
                        columns=[
                            dg.TableColumn(c.name, c.type.lower(), description=c.description)
                            for c in catalog[name][1]
                        ]
                    ),
                    "dagster/table_name": f"marts.{name}",
                },
            )
            for name in MARTS
        ],
        backfill_policy=dg.BackfillPolicy.single_run(),  # a month range of the refresh job is one run
    )
    def marts(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult]:
        # what the run's sources failed to load, from its events (each step may be its own process)
        records = context.instance.get_records_for_run(
            context.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        failed, loaded = run_outcome(
            m for r in records if (m := r.event_log_entry.asset_materialization) is not None
        )
        if failed and not loaded:
            raise dg.Failure(f"nothing loaded, nothing published: {describe(failed)}")
        with warehouse.writer(context) as con:
            months = run_months(context.run.tags) or loaded_months(con)  # none named: all of them
            emit = to_run_log(context.log.info)
            result = refresh_marts(
                con, months, {"mark_last_gap_threshold_bps": warehouse.mark_last_gap_bps}, progress=emit
            )
            emit(f"marts: publishing the serving copy {warehouse.serving_path}")
            published = publish_serving(con, Path(warehouse.serving_path))
        emit(
            f"marts: {result.rows:,} rows rebuilt for {len(months)} months in {result.seconds:.2f}s; "
            f"published snapshot {published.snapshot} ({published.files} files; serving file {published.path}) "
            f"in {published.seconds:.2f}s"
        )
        for name in MARTS:
            metadata: dict[str, dg.RawMetadataValue] = {
                "rows": published.tables.get(f"marts.{name}", 0),
                "published_snapshot": published.snapshot,
            }
            if name == "fct_price_interval":
                metadata.update(
                    rows_rebuilt=result.rows,
                    windows=result.windows,
                    seconds=round(result.seconds, 3),
                    publish_seconds=round(published.seconds, 3),
                )
            yield dg.MaterializeResult(asset_key=["marts", name], metadata=metadata)
        if failed:  # published what loaded; the run fails, naming what did not
            raise dg.Failure(
                f"{len(failed)} unit(s) failed to load (the marts of what loaded are published): {describe(failed)}",
                metadata={FAILED_UNITS: dg.MetadataValue.json(failed)},
            )

    return [marts]
