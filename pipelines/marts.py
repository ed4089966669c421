"""Dagster assets for the BI-facing marts, rebuilt from ``sql/`` for the months a run touched, then
drawn: each run writes the report and hangs its charts on the marts' materializations."""

import base64
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from pipelines.models import mart_catalog, refresh_marts
from pipelines.partitions import WAREHOUSE_POOL, partition_months
from pipelines.progress import to_run_log
from pipelines.resources import WarehouseResource
from pipelines.storage import publish_serving

if TYPE_CHECKING:
    from pipelines.report import Report

MARTS = (
    "fct_price_interval",
    "fct_carry",
    "rpt_coverage",
    "rpt_vendor_divergence",
    "rpt_mark_last_gap",
    "rpt_term_structure",
    "dim_instrument",
    "map_vendor_instrument",
)


THUMBNAIL_WIDTH = 760  # px: readable in the UI's markdown dialog, still small in the event log


def report_metadata(report: "Report") -> "dict[str, dict[str, dg.RawMetadataValue]]":
    """Per mart: the report's path and, for a charted mart, its chart as a small PNG in markdown
    (the Dagster UI renders data-URI images in md metadata), so the picture is where users look.
    The thumbnail is the report's PNG scaled down (Pillow, which matplotlib depends on): drawing
    the chart again would cost as much as the first time."""
    from PIL import Image

    link: dict[str, dg.RawMetadataValue] = {"report": dg.MetadataValue.path(str(report.html_path.resolve()))}
    metadata = {name: dict(link) for name in MARTS}
    for chart in report.charts:
        image = Image.open(report.png_paths[chart.name])
        image.thumbnail((THUMBNAIL_WIDTH, THUMBNAIL_WIDTH * 4))
        buffer = io.BytesIO()
        image.convert("RGB").quantize(colors=96).save(buffer, format="PNG")  # a palette: a third the size
        png = base64.b64encode(buffer.getvalue()).decode("ascii")
        metadata[chart.mart]["chart"] = dg.MetadataValue.md(
            f"**{chart.title}**: {chart.caption}\n\n![{chart.title}](data:image/png;base64,{png})"
        )
    return metadata


def draw_report(
    context: dg.AssetExecutionContext, serving_path: Path
) -> "dict[str, dict[str, dg.RawMetadataValue]]":
    """Write the report and return its pictures per mart; {} when switched off or when drawing fails.

    The marts are already published when this runs, so a chart that cannot be drawn is a warning
    naming the cause, never a failed run; ``MARKHOUSE_REPORT=0`` skips it (benchmarks, headless jobs).
    """
    if os.environ.get("MARKHOUSE_REPORT", "1").strip().lower() in ("0", "false", "no", "off"):
        return {}
    from pipelines.report import write_report  # matplotlib: loaded when a run draws, not with the code

    started = time.perf_counter()
    try:
        report = write_report(serving_path)
    except Exception as exc:  # the data is published; the pictures are a view of it
        context.log.warning(f"report not written: {type(exc).__name__}: {exc}")
        return {}
    context.log.info(f"report {report.html_path} written in {time.perf_counter() - started:.2f}s")
    return report_metadata(report)


def build_mart_assets(
    partitions: dg.PartitionsDefinition, upstream: list[dg.AssetKey]
) -> list[dg.AssetsDefinition]:
    catalog = mart_catalog()

    @dg.multi_asset(
        name="marts",
        group_name="marts",
        specs=[
            dg.AssetSpec(
                ["marts", name],
                deps=upstream,
                partitions_def=partitions,
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
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def marts(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult]:
        months = partition_months(context.partition_keys)
        with warehouse.get().writer() as con:
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
        pictures = draw_report(context, published.path)
        for name in MARTS:
            metadata: dict[str, dg.RawMetadataValue] = {
                "rows": published.tables.get(f"marts.{name}", 0),
                "published_snapshot": published.snapshot,
                **pictures.get(name, {}),
            }
            if name == "fct_price_interval":
                metadata.update(
                    rows_rebuilt=result.rows,
                    windows=result.windows,
                    seconds=round(result.seconds, 3),
                    publish_seconds=round(published.seconds, 3),
                )
            yield dg.MaterializeResult(asset_key=["marts", name], metadata=metadata)

    return [marts]
