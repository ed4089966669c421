"""The report's charts, with matplotlib's object API (no pyplot global state: safe in Dagster's
threads). Nothing is smoothed; each artist's ``gid`` names its series so a test can check its data."""

from __future__ import annotations

import io
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from pipelines.report.data import Columns

LAG_COLOURS = {0: "#08306b", 7: "#2171b5", 30: "#6baed6", 90: "#b0c4de"}
MARKERS = ("o", "s", "^", "D", "v", "P")
WIDTH_IN = 11.0
Groups = dict[tuple[Any, ...], list[int]]


@dataclass(frozen=True)
class Chart:
    name: str  # file stem and HTML id
    title: str
    caption: str  # what the picture shows, in a sentence
    figure: Figure
    mart: str  # the mart it draws


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def _groups(data: Columns, keys: Sequence[str], rows: Sequence[int] | None = None) -> Groups:
    """Row numbers (of ``rows``, default all) per distinct value of ``keys``, in first-seen order
    (the queries sort)."""
    groups: Groups = {}
    for i in range(len(data.get(keys[0]) or ())) if rows is None else rows:
        groups.setdefault(tuple(data[k][i] for k in keys), []).append(i)
    return groups


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_yticks([])
    if len(ax.get_shared_x_axes().get_siblings(ax)) == 1:  # a shared x axis keeps its siblings' dates
        ax.set_xticks([])


def _zero_line_grid(ax: Axes, ylabel: str) -> None:
    ax.axhline(0, color="#888888", linewidth=0.6)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _dates(ax: Axes) -> None:
    ax.xaxis_date()
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)


def _series_ticks(ax: Axes, series: Sequence[tuple[Any, ...]]) -> None:
    ax.set_yticks(range(len(series)))
    ax.set_yticklabels([f"{k[2]} · {k[1]} ({k[0]}, {k[3]})" for k in series], fontsize=7)


def _coloured(groups: Groups) -> list[tuple[Any, tuple[Any, ...], list[int]]]:
    cmap = colormaps["tab10" if len(groups) <= 10 else "tab20"]
    return [(cmap(n % cmap.N), key, rows) for n, (key, rows) in enumerate(groups.items())]


def term_structure_chart(data: Columns) -> Chart:
    coins = sorted(set(data["coin"]))
    fig = Figure(figsize=(WIDTH_IN, 4.2), layout="constrained")
    axes = fig.subplots(1, max(len(coins), 1), squeeze=False)[0]
    if not coins:
        _empty(axes[0], "no dated futures in marts.rpt_term_structure for this range")
    for ax, coin in zip(axes, coins, strict=False):
        on_coin = [i for i, c in enumerate(data["coin"]) if c == coin]
        curves = _groups(data, ("vendor", "venue", "quote", "settle"), on_coin)
        for n, ((vendor, venue, quote, settle), rows) in enumerate(curves.items()):
            marker, curve = MARKERS[n % len(MARKERS)], f"{vendor}|{venue}|{coin}|{quote}|{settle}"
            for (ts, lag), points in _groups(data, ("ts", "days_before"), rows).items():
                colour = LAG_COLOURS.get(lag, "#999999")
                futures = sorted(
                    (i for i in points if data["kind"][i] == "future"), key=lambda i: data["tenor_rank"][i]
                )
                when = "latest" if lag == 0 else f"{lag}d earlier"
                (line,) = ax.plot(
                    [data["dte_days"][i] for i in futures],
                    [data["annualized_basis_pct"][i] for i in futures],
                    marker=marker,
                    color=colour,
                    linestyle=("-", "--", ":", "-.")[n % 4],
                    label=f"{venue} ({vendor}, {quote}/{settle}) {ts:%Y-%m-%d %H:%M} ({when})",
                )
                line.set_gid(f"curve|{curve}|{ts.isoformat()}")
                funding = [
                    data["funding_annualized_pct"][i] for i in points if data["kind"][i] == "perpetual"
                ]
                if funding := [f for f in funding if f is not None]:
                    dots = ax.scatter(
                        [0.0] * len(funding), funding, marker=marker, facecolors="none", edgecolors=colour
                    )
                    dots.set_gid(f"perp|{curve}|{ts.isoformat()}")
        _zero_line_grid(ax, "annualized basis, %")
        ax.set_title(coin)
        ax.set_xlabel("days to expiry (hollow at 0: the perpetual's annualized funding)")
        ax.legend(fontsize=6.5, loc="best")
    return Chart(
        "term_structure",
        "Futures term structure",
        "Annualized basis of each live dated future against its days to expiry, per coin and venue, "
        "at the latest snapshot and 7, 30 and 90 days before it (marts.rpt_term_structure).",
        fig,
        "rpt_term_structure",
    )


def carry_chart(data: Columns, bucket: str) -> Chart:
    fig = Figure(figsize=(WIDTH_IN, 6.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    series = _groups(data, ("kind", "vendor", "venue", "instrument_key"))
    for ax, kind, ylabel in (
        (top, "perpetual", "funding, annualized %"),
        (bottom, "future", "basis, annualized %"),
    ):
        mine = {key: rows for key, rows in series.items() if key[0] == kind}
        if not mine:
            _empty(ax, f"no {kind} carry in marts.fct_carry for this range")
            continue
        for colour, (_, vendor, venue, key), rows in _coloured(mine):
            (line,) = ax.plot(
                [data["bucket"][i] for i in rows],
                [data["carry_pct"][i] for i in rows],
                color=colour,
                linewidth=1.0,
                label=f"{key} · {venue} ({vendor})",
            )
            line.set_gid(f"{vendor}|{venue}|{key}")
        _zero_line_grid(ax, ylabel)
        _dates(ax)
        _legend(ax)
    top.set_title(f"Perpetuals: funding (mean per {bucket})", fontsize=10)
    bottom.set_title(f"Dated futures: basis (mean per {bucket})", fontsize=10)
    return Chart(
        "carry",
        "Annualized funding and basis over time",
        f"Perpetuals' annualized funding and dated futures' annualized basis per venue and instrument, "
        f"mean per {bucket} (marts.fct_carry).",
        fig,
        "fct_carry",
    )


TENOR_STYLES = {7: ":", 30: "-", 60: "--", 90: "-.", 180: (0, (1, 4))}


def _per_coin(data: Columns, height: float) -> tuple[Figure, list[tuple[Axes, list[int]]]]:
    """One panel per coin (stacked), with the row numbers of that coin."""
    coins = sorted(set(data["coin"]))
    fig = Figure(figsize=(WIDTH_IN, height * max(len(coins), 1)), layout="constrained")
    axes = fig.subplots(max(len(coins), 1), 1, squeeze=False)[:, 0]
    return fig, [
        (ax, [i for i, c in enumerate(data["coin"]) if c == coin])
        for ax, coin in zip(axes, coins, strict=False)
    ] or [(axes[0], [])]


def _broken_at_gaps(xs: list[Any], ys: list[Any], step: timedelta) -> tuple[list[Any], list[Any]]:
    """The points with a NaN where a bucket is missing (a tenor unbracketed for a while): no line across."""
    out_x, out_y = [], []
    for n, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if n and x - xs[n - 1] > step:
            out_x.append(xs[n - 1] + step)
            out_y.append(np.nan)
        out_x.append(x)
        out_y.append(y)
    return out_x, out_y


def constant_maturity_chart(data: Columns, bucket: str) -> Chart:
    fig, panels = _per_coin(data, 3.4)
    for ax, rows in panels:
        if not rows:
            _empty(
                ax, "no tenor bracketed by two expiries in marts.fct_carry_constant_maturity for this range"
            )
            continue
        curves = _groups(data, ("vendor", "venue", "settle"), rows)
        for colour, (vendor, venue, settle), mine in _coloured(curves):
            for (tenor,), points in _groups(data, ("tenor_days",), mine).items():
                (line,) = ax.plot(
                    *_broken_at_gaps(
                        [data["bucket"][i] for i in points],
                        [data["basis_pct"][i] for i in points],
                        timedelta(hours=1) if bucket == "hour" else timedelta(days=1),
                    ),
                    color=colour,
                    linestyle=TENOR_STYLES.get(tenor, "-"),
                    linewidth=1.0,
                    label=f"{tenor}d · {venue} ({vendor}, {settle}-settled)",
                )
                line.set_gid(f"{vendor}|{venue}|{data['coin'][points[0]]}|{settle}|{tenor}")
        ax.set_title(data["coin"][rows[0]], fontsize=10)
        _zero_line_grid(ax, "annualized basis, %")
        _dates(ax)
        _legend(ax)
    return Chart(
        "constant_maturity",
        "Constant-maturity basis",
        f"Annualized basis at constant 7/30/60/90/180-day maturities, interpolated linearly in days to expiry "
        f"between the two expiries that bracket each tenor (none where none does), mean per {bucket}, "
        "per coin, venue and vendor (marts.fct_carry_constant_maturity).",
        fig,
        "fct_carry_constant_maturity",
    )


def carry_trade_chart(data: Columns, bucket: str) -> Chart:
    fig, panels = _per_coin(data, 4.6)
    for ax, rows in panels:
        if not rows:
            _empty(ax, "no coin with a dated future in marts.rpt_carry_trade for this range")
            continue
        for colour, (pair,), mine in _coloured(_groups(data, ("pair",), rows)):
            mean = data["mean_return_pct"][mine[0]]
            (line,) = ax.plot(
                [data["bucket"][i] for i in mine],
                [data["return_pct"][i] for i in mine],
                color=colour,
                linewidth=1.0,
                label=f"{pair} (mean {mean:.1f} %)",
            )
            line.set_gid(f"{data['coin'][mine[0]]}|{pair}")
        ax.set_title(f"{data['coin'][rows[0]]}: the 5 trades that paid most on average", fontsize=10)
        _zero_line_grid(ax, "annualized return, %")
        _dates(ax)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=7, frameon=False)
    return Chart(
        "carry_trade",
        "Carry trade: the best pairs",
        f"Annualized return of the classic carry trades (long perpetual / short dated future: basis - funding; "
        f"long index / short dated future: basis) across venues and vendors, the 5 best per coin over the range, "
        f"mean per {bucket} (marts.rpt_carry_trade).",
        fig,
        "rpt_carry_trade",
    )


def mark_last_gap_chart(
    data: Columns, threshold_bps: float | None, interval: str, interval_seconds: int
) -> Chart:
    series = _groups(data, ("vendor", "venue", "instrument_key", "timestamp_type"))
    fig = Figure(figsize=(WIDTH_IN, 3.2 + 0.28 * max(len(series), 1)), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, max(len(series), 1) * 0.35 + 0.6])
    if not series:
        _empty(top, f"no {interval} interval over the threshold in marts.rpt_mark_last_gap for this range")
        bottom.set_visible(False)
    width = timedelta(seconds=interval_seconds)
    for n, (colour, (vendor, venue, key, ts_type), rows) in enumerate(_coloured(series)):
        label = f"{key} · {venue} ({vendor}) {ts_type}"
        dots = top.scatter(
            [data["ts"][i] for i in rows], [data["gap_bps"][i] for i in rows], s=9, color=colour, label=label
        )
        dots.set_gid(f"{vendor}|{venue}|{key}|{ts_type}")
        episodes = sorted({(data["episode_start"][i], data["episode_end"][i]) for i in rows})
        bars = bottom.broken_barh(
            [(date2num(start), date2num(end + width) - date2num(start)) for start, end in episodes],
            (n - 0.4, 0.8),
            color=colour,
        )
        bars.set_gid(f"episodes|{vendor}|{venue}|{key}|{ts_type}")
    if series:
        if threshold_bps is not None:
            for sign in (1, -1):
                top.axhline(sign * threshold_bps, color="#c0392b", linestyle="--", linewidth=0.8)
        top.set_ylabel("(mark − last) / mark, bps")
        top.set_title("each interval over the threshold, coloured as its series below", fontsize=9)
        top.grid(alpha=0.3)
        _series_ticks(bottom, list(series))
        bottom.set_ylim(len(series) - 0.5, -0.5)
        bottom.set_title("episodes (runs of consecutive intervals over the threshold)", fontsize=9)
        _dates(bottom)
    shown = f"{threshold_bps:g} bps" if threshold_bps is not None else "the threshold"
    return Chart(
        "mark_last_gap",
        "Mark/last gap episodes",
        f"Every {interval} interval where mark and last price are more than {shown} apart (dashed), "
        "and the episodes they form (marts.rpt_mark_last_gap).",
        fig,
        "rpt_mark_last_gap",
    )


def vendor_divergence_chart(data: Columns, interval: str) -> Chart:
    pairs = _groups(data, ("vendor_a", "vendor_b", "venue", "instrument_key"))
    fig = Figure(figsize=(WIDTH_IN, 6.0), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    for ax, price in zip(axes, ("mark", "index", "last"), strict=True):
        if not pairs:
            _empty(ax, f"no two vendors cover the same {interval} interval in this range")
            continue
        for colour, (a, b, venue, key), rows in _coloured(pairs):
            (line,) = ax.plot(
                [data["ts"][i] for i in rows],
                [data[f"{price}_diff_bps"][i] for i in rows],
                color=colour,
                linewidth=0.9,
                label=f"{a} − {b}: {key} · {venue}",
            )
            line.set_gid(f"{price}|{a}|{b}|{venue}|{key}")
        _zero_line_grid(ax, f"{price}, bps")
        _dates(ax)
    if pairs:
        _legend(axes[0])
    return Chart(
        "vendor_divergence",
        "Vendor divergence",
        f"Where two vendors cover the same {interval} interval: vendor_a's price minus vendor_b's, in basis "
        "points of vendor_b's, for mark, index and last (marts.rpt_vendor_divergence).",
        fig,
        "rpt_vendor_divergence",
    )


def coverage_matrix(data: Columns, days: Sequence[date]) -> tuple[list[tuple[Hashable, ...]], np.ndarray]:
    """Series × day of missing intervals; NaN where the day expects nothing (before a listing, after
    an expiry, a month not loaded)."""
    series = list(_groups(data, ("vendor", "venue", "instrument_key", "interval")))
    row_of = {key: n for n, key in enumerate(series)}
    col_of = {day: n for n, day in enumerate(days)}
    matrix = np.full((len(series), len(days)), np.nan)
    for i in range(len(data["day"])):
        if data["expected_rows"][i] == 0 and data["loaded_rows"][i] == 0:
            continue
        key = tuple(data[k][i] for k in ("vendor", "venue", "instrument_key", "interval"))
        matrix[row_of[key], col_of[data["day"][i].date()]] = data["missing_intervals"][i]
    return series, matrix


def coverage_chart(data: Columns, days: Sequence[date]) -> Chart:
    series, matrix = coverage_matrix(data, days)
    fig = Figure(figsize=(WIDTH_IN, 1.6 + 0.26 * max(len(series), 1)), layout="constrained")
    ax = fig.subplots()
    if not series:
        _empty(ax, "no coverage rows in marts.rpt_coverage for this range")
    else:
        cmap = colormaps["YlOrRd"].with_extremes(under="#41ab5d", bad="#e0e0e0")
        worst = float(np.nanmax(matrix)) if np.isfinite(matrix).any() else 1.0
        image = ax.imshow(
            np.ma.masked_invalid(matrix),
            aspect="auto",
            interpolation="nearest",
            cmap=cmap,
            norm=Normalize(vmin=0.5, vmax=max(worst, 1.0)),
            extent=(date2num(days[0]), date2num(days[-1] + timedelta(days=1)), len(series) - 0.5, -0.5),
        )
        image.set_gid("coverage")
        _series_ticks(ax, series)
        _dates(ax)
        colourbar = fig.colorbar(image, ax=ax, extend="min", pad=0.01)
        colourbar.set_label("missing intervals (green: none, grey: none expected)", fontsize=8)
    return Chart(
        "coverage",
        "Coverage",
        "Missing intervals per instrument and day at the finest interval loaded: green where the day is "
        "complete, grey where nothing is expected (marts.rpt_coverage, marts.fct_price_interval).",
        fig,
        "rpt_coverage",
    )
