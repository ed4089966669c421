"""Dagster assets for the SQL models, rebuilt for the months a run touched and published, and the
report drawn from the marts as its own asset (it never holds up the marts)."""

import base64
import io
import time
from collections.abc import Callable, Iterator
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from pipelines.models import Model, all_models, mart_catalog, mart_models, refresh_marts
from pipelines.partitions import run_months
from pipelines.progress import to_run_log
from pipelines.resources import WarehouseResource
from pipelines.settings import SQL_DIR
from pipelines.sources.assets import FAILED_UNITS, describe, run_outcome
from pipelines.warehouse.lake import loaded_months
from pipelines.warehouse.serving import publish_serving

if TYPE_CHECKING:
    from pipelines.report import Report

MARTS = tuple(m.name for m in mart_models())
THUMBNAIL_WIDTH = 760  # px: readable in the UI's markdown dialog, still small in the event log


def report_metadata(report: "Report") -> "dict[str, dg.RawMetadataValue]":
    """Each chart as a small data-URI PNG in markdown (the UI renders it), scaled down, not drawn again."""
    from PIL import Image

    html = str(report.html_path.resolve())
    metadata: dict[str, dg.RawMetadataValue] = {"report": dg.MetadataValue.path(html)}
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
    """The report, or None and a warning: the marts are published already, the pictures only a view."""
    from pipelines.report import write_report  # matplotlib: loaded when a run draws, not with the code

    try:
        return write_report(serving_path)
    except Exception as exc:
        warn(f"report not written: {type(exc).__name__}: {exc}")
        return None


def build_report_asset() -> dg.AssetsDefinition:
    reads = {
        r for p in (SQL_DIR / "report").glob("*.sql") for r in Model(p.stem, "report", p.read_text()).reads
    }

    @dg.asset(
        key=["report"],
        group_name="report",
        deps=sorted(dg.AssetKey(r.split(".")) for r in reads if r.startswith("marts.")),
        kinds={"html", "png"},
        backfill_policy=dg.BackfillPolicy.single_run(),  # a month range of the refresh job is one run
        description="The marts as charts: one self-contained HTML page and a PNG per chart, beside the serving "
        "file. Drawn after the marts in the scheduled refresh; `markhouse backfill --report` and `markhouse "
        "report` draw it from the command line.",
    )
    def report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        started = time.perf_counter()
        drawn = draw_report(Path(warehouse.serving_path), context.log.warning)
        if drawn is None:
            return dg.MaterializeResult(metadata={"drawn": False})
        context.log.info(f"report {drawn.html_path} written in {time.perf_counter() - started:.2f}s")
        return dg.MaterializeResult(metadata=report_metadata(drawn))

    return report


def _spec(model: Model, models: set[str], sources: list[dg.AssetKey], catalog: dict) -> dg.AssetSpec:
    """A model's asset after what it reads (``raw.load_log``: every source); ``ref.*`` is no asset (every
    source writes it: edges from all would bury the lineage)."""
    deps = {dg.AssetKey(r.split(".")) for r in model.reads if r in models}
    deps |= {k for k in sources if ".".join(k.path) in model.reads or "raw.load_log" in model.reads}
    metadata: dict[str, Any] = {"dagster/table_name": model.relation}
    if model.schema == "marts":
        description, columns = catalog[model.name]
        schema = [dg.TableColumn(c.name, c.type.lower(), description=c.description) for c in columns]
        metadata["dagster/column_schema"] = dg.TableSchema(columns=schema)
    else:
        header = takewhile(lambda line: line.startswith("--"), model.template.splitlines())
        description = " ".join(line[2:].strip() for line in header).removeprefix(f"{model.name}:").strip()
    return dg.AssetSpec(
        [model.schema, model.name],
        deps=sorted(deps),
        skippable=model.schema != "marts",  # a view is recorded when its definition changes
        group_name=model.schema,
        kinds={"duckdb", "sql"},
        description=description,
        metadata=metadata,
    )


def build_mart_assets(sources: list[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    """Every model an asset, in one step recorded once per run (a materialization costs Dagster ~10 ms); the
    staging and intermediate views only when their definition changed."""
    catalog = mart_catalog()
    models = all_models()
    relations = {m.relation for m in models}

    @dg.multi_asset(
        name="marts",
        specs=[_spec(m, relations, sources, catalog) for m in models],
        backfill_policy=dg.BackfillPolicy.single_run(),  # a month range of the refresh job is one run
    )
    def marts(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult]:
        # what the run's sources failed to load, from its events (each step may be its own process)
        kind = dg.DagsterEventType.ASSET_MATERIALIZATION
        records = context.instance.get_records_for_run(context.run_id, of_type=kind).records
        materialized = (r.event_log_entry.asset_materialization for r in records)
        failed, loaded = run_outcome(m for m in materialized if m is not None)
        if failed and not loaded:
            raise dg.Failure(f"nothing loaded, nothing published: {describe(failed)}")
        with warehouse.writer(context) as con:
            months = run_months(context.run.tags) or loaded_months(con)  # none named: all of them
            emit = to_run_log(context.log.info)
            settings = {"mark_last_gap_threshold_bps": warehouse.mark_last_gap_bps}
            result = refresh_marts(con, months, settings, progress=emit)
            emit(f"marts: publishing the serving copy {warehouse.serving_path}")
            published = publish_serving(con, Path(warehouse.serving_path))
        emit(
            f"marts: {result.rows:,} rows rebuilt for {len(months)} months in {result.seconds:.2f}s; "
            f"published snapshot {published.snapshot} ({published.files} files; serving file {published.path}) "
            f"in {published.seconds:.2f}s"
        )
        # a staging or intermediate view replaced by the same definition did not change: no
        # materialization (each is two of the run's Dagster events, ~10 ms apiece)
        for model in (m for m in models if m.schema == "marts" or m.relation in result.new_views):
            metadata: dict[str, dg.RawMetadataValue] = {"published_snapshot": published.snapshot}
            if model.schema == "marts":  # a view has no rows of its own to count
                metadata["rows"] = published.tables.get(model.relation, 0)
            if model.name == "fct_price_interval":
                metadata |= {"rows_rebuilt": result.rows, "windows": result.windows}
                metadata |= {
                    "seconds": round(result.seconds, 3),
                    "publish_seconds": round(published.seconds, 3),
                }
            yield dg.MaterializeResult(asset_key=[model.schema, model.name], metadata=metadata)
        if failed:  # published what loaded; the run fails, naming what did not
            raise dg.Failure(
                f"{len(failed)} unit(s) failed to load (the marts of what loaded are published): {describe(failed)}",
                metadata={FAILED_UNITS: dg.MetadataValue.json(failed)},
            )

    return [marts]
