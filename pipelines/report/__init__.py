"""``markhouse report``: the marts as pictures. One self-contained HTML page plus the same charts as
PNG files beside it, read from the serving copy (so it never waits for or blocks a backfill)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.report import charts
from pipelines.report.charts import Chart, figure_png
from pipelines.report.data import ReportData, ReportInputError, read_report_data
from pipelines.report.page import render_page
from pipelines.status import INTERVAL_SECONDS

__all__ = ["Report", "ReportInputError", "build_charts", "write_report"]


@dataclass(frozen=True)
class Report:
    html_path: Path
    png_paths: dict[str, Path]
    charts: list[Chart]
    data: ReportData


def build_charts(data: ReportData) -> list[Chart]:
    rng, columns, gap = data.range, data.columns, data.columns["mark_last_gap"]
    threshold = float(gap["threshold_bps"][0]) if gap["threshold_bps"] else None  # in force when it was read
    return [
        charts.term_structure_chart(columns["term_structure"]),
        charts.carry_chart(columns["carry"], rng.carry_bucket),
        charts.constant_maturity_chart(columns["constant_maturity"], rng.carry_bucket),
        charts.carry_trade_chart(columns["carry_trade"], rng.carry_bucket),
        charts.mark_last_gap_chart(gap, threshold, rng.interval, INTERVAL_SECONDS[rng.interval]),
        charts.vendor_divergence_chart(columns["vendor_divergence"], rng.interval),
        charts.vol_chart("vol_smile", columns["vol_smile"]),
        charts.vol_chart("vol_term_structure", columns["vol_term_structure"]),
        charts.coverage_chart(columns["coverage"], rng.days, data.as_of),
    ]


def write_report(serving_path: Path, output: Path | None = None, **options: Any) -> Report:
    """The page and each chart's PNG beside it, replaced atomically: an open page never shows half
    a file. ``options``: read_report_data's (start, end, instruments, interval, as_of). By default
    beside the serving copy it is read from, so a test's temporary warehouse gets its own."""
    html_path = Path(output or Path(serving_path).parent / "report" / "markhouse-report.html")
    data = read_report_data(serving_path, **options)
    charts = build_charts(data)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    pngs = {chart.name: figure_png(chart.figure) for chart in charts}
    png_paths = {name: _replace(html_path.with_name(f"{name}.png"), png) for name, png in pngs.items()}
    page = render_page([(c.name, c.title, c.caption, pngs[c.name]) for c in charts], data, Path(serving_path))
    _replace(html_path, page.encode("utf-8"))
    return Report(html_path, png_paths, charts, data)


def _replace(path: Path, content: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(content)
    tmp.replace(path)
    return path
