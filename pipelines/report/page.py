"""The report as one HTML page that needs nothing else: every chart is embedded as a base64 PNG,
there is no script and no link to fetch, so it opens offline, in a mail client or from a share."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from pipelines.report.data import ReportData

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1180px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; } h2 { font-size: 1.15rem; margin: 2rem 0 0.3rem; }
p.meta, p.caption { color: #555; font-size: 0.9rem; margin: 0.2rem 0 0.6rem; }
nav a { margin-right: 1rem; font-size: 0.9rem; } figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
"""


def render_page(charts: Sequence[tuple[str, str, str, bytes]], data: ReportData, serving_path: Path) -> str:
    """``charts``: (name, title, caption, png) in page order."""
    rng, published_at = data.range, data.published_at
    scope = ", ".join(rng.instruments) if rng.instruments else "every instrument"
    published = f", published {published_at:%Y-%m-%d %H:%M} UTC" if published_at else ""
    sections = [
        f'<section id="{name}">\n<h2>{html.escape(title)}</h2>\n'
        f'<p class="caption">{html.escape(caption)}</p>\n'
        f'<figure><img class="chart" id="chart-{name}" alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}"></figure>\n</section>'
        for name, title, caption, png in charts
    ]
    nav = " ".join(f'<a href="#{name}">{html.escape(title)}</a>' for name, title, _, _ in charts)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>markhouse report {rng.start} .. {rng.end}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>markhouse report</h1>\n"
        f'<p class="meta">{rng.start} .. {rng.end} (UTC days), {html.escape(scope)}, gap and divergence at '
        f"{html.escape(rng.interval)}; read from {html.escape(str(serving_path))}{published}.</p>\n"
        f"<nav>{nav}</nav>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )
