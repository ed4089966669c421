"""The report's charts, with matplotlib's object API (no pyplot global state: safe in Dagster's
threads). Nothing is smoothed; each artist's ``gid`` names its series so a test can check its data."""

from __future__ import annotations

import io
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pipelines.report.data import Columns

LAG_COLOURS = {0: "#08306b", 7: "#2171b5", 30: "#6baed6", 90: "#b0c4de"}
MARKERS = ("o", "s", "^", "D", "v", "P")
DASHES = ("-", (0, (4, 2)))  # every other line dashed: two series that coincide both stay in sight
WIDTH_IN = 11.0
CARRY_PANELS = {"perpetual": "perpetuals' funding", "future": "dated futures' basis"}  # kind: what it shows
FONT = 9  # legends and series names: the page shows each PNG at its own size, so 9 pt reads at 100 %
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


def _zero_line_grid(ax: Axes, ylabel: str, over_time: bool = True) -> None:
    ax.axhline(0, color="#888888", linewidth=0.6)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if over_time:
        _dates(ax)


def _dates(ax: Axes) -> None:
    ax.xaxis_date()
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _legend(ax: Axes, handles: list[Line2D] | None = None, **where: Any) -> None:
    """Every labelled series (or ``handles``: a key to the styles), beside the axes unless ``where``."""
    if handles or ax.get_legend_handles_labels()[0]:
        where = where or {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)}
        ax.legend(handles=handles or ax.get_legend_handles_labels()[0], fontsize=FONT, frameon=False, **where)


def _series_ticks(ax: Axes, series: Sequence[tuple[Any, ...]]) -> None:
    ax.set_yticks(range(len(series)))
    ax.set_yticklabels([f"{k[2]} · {k[1]} ({k[0]}, {k[3]})" for k in series], fontsize=FONT)


def _coloured(groups: Groups) -> list[tuple[Any, tuple[Any, ...], list[int]]]:
    cmap = colormaps["tab10" if len(groups) <= 10 else "tab20"]
    return [(cmap(n % cmap.N), key, rows) for n, (key, rows) in enumerate(groups.items())]


def _lines(
    ax: Axes,
    data: Columns,
    groups: Groups,
    xy: tuple[str, str],
    label: str,
    gid: str,
    step: timedelta | None = None,
) -> None:
    """One line per group, each its own colour and every other one dashed (two expiries of one vendor
    can coincide). ``label`` and ``gid`` are formatted with the group's key; with ``step``, no line
    across a missing bucket."""
    for n, (colour, key, rows) in enumerate(_coloured(groups)):
        xs, ys = ([data[c][i] for i in rows] for c in xy)
        xs, ys = _broken_at_gaps(xs, ys, step) if step else (xs, ys)
        ax.plot(xs, ys, color=colour, lw=1, ls=DASHES[n % 2], label=label.format(*key), gid=gid.format(*key))


def _broken_at_gaps(xs: list[Any], ys: list[Any], step: timedelta) -> tuple[list[Any], list[Any]]:
    """The points with a NaN where a bucket is missing (a tenor unbracketed for a while): no line across."""
    points = list(zip(xs[:1], ys[:1], strict=True))
    for (before, _), (x, y) in pairwise(zip(xs, ys, strict=True)):
        points += [(before + step, np.nan), (x, y)] if x - before > step else [(x, y)]
    return [x for x, _ in points], [y for _, y in points]


def _panels(
    data: Columns, keys: Sequence[str], height: float, per: int = 1
) -> tuple[Figure, list[tuple[list[Axes], tuple[Any, ...], list[int]]]]:
    """Small multiples: ``per`` stacked panels for each value of ``keys`` (a coin, a curve), on one
    time axis, with that value and its rows."""
    groups = _groups(data, keys) or {(): []}
    fig = Figure(figsize=(WIDTH_IN, height * len(groups) * per), layout="constrained")
    axes = list(fig.subplots(len(groups) * per, 1, squeeze=False, sharex=True)[:, 0])
    return fig, [(axes[n * per : (n + 1) * per], key, rows) for n, (key, rows) in enumerate(groups.items())]


def term_structure_chart(data: Columns) -> Chart:
    coins = sorted(set(data["coin"]))
    fig = Figure(figsize=(WIDTH_IN, 5.6), layout="constrained")
    axes = fig.subplots(1, max(len(coins), 1), squeeze=False)[0]
    if not coins:
        _empty(axes[0], "no dated futures in marts.rpt_term_structure for this range")
    for ax, coin in zip(axes, coins, strict=False):
        on_coin = [i for i, c in enumerate(data["coin"]) if c == coin]
        key: list[Line2D] = []  # the legend: a curve by its marker and line, a snapshot by its colour
        curves = _groups(data, ("vendor", "venue", "quote", "settle"), on_coin)
        for n, ((vendor, venue, quote, settle), rows) in enumerate(curves.items()):
            curve = f"{vendor}|{venue}|{coin}|{quote}|{settle}"
            style: dict[str, Any] = {"marker": MARKERS[n % 6], "linestyle": ("-", "--", ":", "-.")[n % 4]}
            label = f"{venue} ({vendor}, {quote}/{settle})\nlatest {max(data['ts'][i] for i in rows):%Y-%m-%d %H:%M}"
            for (ts, lag), points in _groups(data, ("ts", "days_before"), rows).items():
                gid = f"{curve}|{ts.isoformat()}"
                futures = [i for i in points if data["kind"][i] == "future"]  # by tenor_rank: the query sorts
                xs, ys = ([data[c][i] for i in futures] for c in ("dte_days", "annualized_basis_pct"))
                ax.plot(xs, ys, color=LAG_COLOURS[lag], gid=f"curve|{gid}", **style)
                perp = [i for i in points if data["kind"][i] == "perpetual"]
                if funding := [f for i in perp if (f := data["funding_annualized_pct"][i]) is not None]:
                    hollow = {"facecolors": "none", "edgecolors": LAG_COLOURS[lag], "gid": f"perp|{gid}"}
                    ax.scatter([0.0] * len(funding), funding, marker=style["marker"], **hollow)
            funded = any((c.get_gid() or "").startswith(f"perp|{curve}|") for c in ax.collections)
            label += "" if funded else f", no funding from {vendor}"
            key.append(Line2D([], [], label=label, color="#444444", **style))
        for lag in sorted({data["days_before"][i] for i in on_coin}):
            snapshot = f"{lag} days earlier" if lag else "latest"
            key.append(Line2D([], [], label=snapshot, color=LAG_COLOURS[lag], linewidth=3))
        if ax.collections:  # the perpetuals' funding
            funding_key = "hollow, at 0: the perpetual's annualized funding"
            key.append(Line2D([], [], label=funding_key, marker="o", ls="none", mfc="none", mec="#444444"))
        _zero_line_grid(ax, "annualized basis, %", over_time=False)
        ax.set(title=coin, xlabel="days to expiry")
        _legend(ax, key, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    caption = (
        "Annualized basis of each live dated future against its days to expiry, per coin and venue, "
        "at the latest snapshot and 7, 30 and 90 days before it (marts.rpt_term_structure)."
    )
    return Chart("term_structure", "Futures term structure", caption, fig, "rpt_term_structure")


def carry_chart(data: Columns, bucket: str) -> Chart:
    fig, panels = _panels(data, ("coin",), 2.4, per=2)
    for axes, coin, rows in panels:
        series = _groups(data, ("kind", "vendor", "venue", "instrument_key"), rows)
        for ax, (kind, what) in zip(axes, CARRY_PANELS.items(), strict=True):
            ax.set_title(f"{coin[0] + ': ' if coin else ''}{what} (mean per {bucket})", fontsize=10)
            if not (mine := {key: on for key, on in series.items() if key[0] == kind}):
                _empty(ax, f"no {kind} carry in marts.fct_carry for this range")
                continue
            _lines(ax, data, mine, ("bucket", "carry_pct"), "{3} · {2} ({1})", "{1}|{2}|{3}")
            _zero_line_grid(ax, f"{what.split()[-1]}, annualized %")
            _legend(ax)
    caption = (
        f"Perpetuals' annualized funding and dated futures' annualized basis per coin, venue and instrument, "
        f"mean per {bucket} (marts.fct_carry)."
    )
    return Chart("carry", "Annualized funding and basis over time", caption, fig, "fct_carry")


def constant_maturity_chart(data: Columns, bucket: str) -> Chart:
    fig, panels = _panels(data, ("vendor", "venue", "coin", "settle"), 2.6)
    for (ax,), curve, rows in panels:
        if not rows:
            _empty(
                ax, "no tenor bracketed by two expiries in marts.fct_carry_constant_maturity for this range"
            )
            continue
        vendor, venue, coin, settle = curve
        tenors, step = _groups(data, ("tenor_days",), rows), timedelta(**{f"{bucket}s": 1})
        _lines(ax, data, tenors, ("bucket", "basis_pct"), "{0} days", "|".join(curve) + "|{0}", step)
        ax.set_title(f"{coin} · {venue} ({vendor}, {settle}-settled)", fontsize=10)
        _zero_line_grid(ax, "annualized basis, %")
        _legend(ax)
    caption = (
        f"Annualized basis at constant 7/30/60/90/180-day maturities, interpolated linearly in days to expiry "
        f"between the two expiries that bracket each tenor (none where none does), mean per {bucket}, "
        "per coin, venue and vendor (marts.fct_carry_constant_maturity)."
    )
    return Chart("constant_maturity", "Constant-maturity basis", caption, fig, "fct_carry_constant_maturity")


def carry_trade_chart(data: Columns, bucket: str) -> Chart:
    fig, panels = _panels(data, ("coin",), 4.6)
    for (ax,), coin, rows in panels:
        if not rows:
            _empty(ax, "no coin with a dated future in marts.rpt_carry_trade for this range")
            continue
        pairs = _groups(data, ("coin", "pair", "mean_return_pct"), rows)
        _lines(ax, data, pairs, ("bucket", "return_pct"), "{1} (mean {2:.1f} %)", "{0}|{1}")
        ax.set_title(f"{coin[0]}: the 5 trades that paid most on average", fontsize=10)
        _zero_line_grid(ax, "annualized return, %")
        _legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    caption = (
        f"Annualized return of the classic carry trades (long perpetual / short dated future: basis - funding; "
        f"long index / short dated future: basis) across venues and vendors, the 5 best per coin over the range, "
        f"mean per {bucket} (marts.rpt_carry_trade)."
    )
    return Chart("carry_trade", "Carry trade: the best pairs", caption, fig, "rpt_carry_trade")


def mark_last_gap_chart(
    data: Columns, threshold_bps: float | None, interval: str, interval_seconds: int
) -> Chart:
    series = _groups(data, ("vendor", "venue", "instrument_key", "timestamp_type"))
    fig = Figure(figsize=(WIDTH_IN, 3.2 + 0.4 * max(len(series), 1)), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, max(len(series), 1) * 0.35 + 0.6])
    if not series:
        _empty(top, f"no {interval} interval over the threshold in marts.rpt_mark_last_gap for this range")
        bottom.set_visible(False)
    width = timedelta(seconds=interval_seconds)
    for n, (colour, (vendor, venue, key, ts_type), rows) in enumerate(_coloured(series)):
        label, gid = f"{key} · {venue} ({vendor}, {ts_type})", f"{vendor}|{venue}|{key}|{ts_type}"
        xs, ys = [data["ts"][i] for i in rows], [data["gap_bps"][i] for i in rows]
        top.scatter(xs, ys, s=12, color=colour, label=label, gid=gid)  # labelled as its episodes' row
        episodes = sorted({(data["episode_start"][i], data["episode_end"][i]) for i in rows})
        spans = [(date2num(start), date2num(end + width) - date2num(start)) for start, end in episodes]
        bottom.broken_barh(spans, (n - 0.4, 0.8), color=colour, gid=f"episodes|{gid}")
    if series:
        if threshold_bps is not None:
            for sign in (1, -1):
                top.axhline(sign * threshold_bps, color="#c0392b", linestyle="--", linewidth=0.8)
        top.set_ylabel("(mark − last) / mark, bps")
        top.set_title("each interval over the threshold, coloured by series (key at the bottom)", fontsize=9)
        top.grid(alpha=0.3)
        _series_ticks(bottom, list(series))
        bottom.set_ylim(len(series) - 0.5, -0.5)
        bottom.set_title("episodes (runs of consecutive intervals over the threshold)", fontsize=9)
        _dates(bottom)
        fig.legend(loc="outside lower center", ncols=2, fontsize=FONT, frameon=False, markerscale=1.5)
    shown = f"{threshold_bps:g} bps" if threshold_bps is not None else "the threshold"
    caption = (
        f"Every {interval} interval where mark and last price are more than {shown} apart (dashed), "
        "and the episodes they form (marts.rpt_mark_last_gap)."
    )
    return Chart("mark_last_gap", "Mark/last gap episodes", caption, fig, "rpt_mark_last_gap")


def vendor_divergence_chart(data: Columns, interval: str) -> Chart:
    pairs = _groups(data, ("vendor_a", "vendor_b", "venue", "instrument_key"))
    fig = Figure(figsize=(WIDTH_IN, 6.0), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    for ax, price in zip(axes, ("mark", "index", "last"), strict=True):
        if not pairs:
            _empty(ax, f"no two vendors cover the same {interval} interval in this range")
            continue
        _lines(
            ax, data, pairs, ("ts", f"{price}_diff_bps"), "{0} − {1}: {3} · {2}", price + "|{0}|{1}|{2}|{3}"
        )
        _zero_line_grid(ax, f"{price}, bps")
    _legend(axes[0])  # none without a line
    caption = (
        f"Where two vendors cover the same {interval} interval: vendor_a's price minus vendor_b's, in basis "
        "points of vendor_b's, for mark, index and last (marts.rpt_vendor_divergence)."
    )
    return Chart("vendor_divergence", "Vendor divergence", caption, fig, "rpt_vendor_divergence")


def coverage_matrix(data: Columns, days: Sequence[date]) -> tuple[list[tuple[Hashable, ...]], np.ndarray]:
    """Series × day of missing intervals; NaN where the day expects nothing (before a listing, after
    an expiry, a month not loaded)."""
    series = _groups(data, ("vendor", "venue", "instrument_key", "interval"))
    col_of = {day: n for n, day in enumerate(days)}
    matrix = np.full((len(series), len(days)), np.nan)
    for n, rows in enumerate(series.values()):
        for i in rows:
            if data["expected_rows"][i] != 0 or data["loaded_rows"][i] != 0:
                matrix[n, col_of[data["day"][i].date()]] = data["missing_intervals"][i]
    return list(series), matrix


def coverage_chart(data: Columns, days: Sequence[date], as_of: datetime) -> Chart:
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
            gid="coverage",
        )
        _series_ticks(ax, series)
        _dates(ax)
        colourbar = fig.colorbar(image, ax=ax, extend="min", pad=0.01)
        colourbar.set_label("missing intervals (green: none, grey: none expected)", fontsize=FONT)
    caption = (
        "Missing intervals per instrument and day at the finest interval loaded: green where the day is "
        f"complete, grey where nothing is expected; judged as of {as_of:%Y-%m-%d %H:%M} UTC as `markhouse "
        "status` judges: the running day expects only the intervals ended by then (marts.rpt_coverage)."
    )
    return Chart("coverage", "Coverage", caption, fig, "rpt_coverage")


VOL_CHARTS = {  # name: title, mart, the key of a line, x and y, the line's label, the x axis' label, caption
    "vol_smile": (
        "Option volatility smile", "rpt_vol_smile", "expiry", ("log_moneyness", "iv_pct"),
        "{3:%Y-%m-%d} · {1} ({0})", "ln(K / F)",
        "Black-76 implied volatility of each strike's out-of-the-money option mark (puts below the forward, "
        "calls above) against log-moneyness, one line per expiry, at each underlying's latest hourly snapshot "
        "(marts.rpt_vol_smile).",
    ),
    "vol_term_structure": (
        "ATM volatility term structure", "rpt_vol_term_structure", "ts", ("days_to_expiry", "atm_vol_pct"),
        "{1} ({0})", "days to expiry",
        "At-the-money implied volatility (linear in strike between the strikes around the forward) of each "
        "expiry against its days to expiry, at each underlying's latest hourly snapshot that has one "
        "(marts.rpt_vol_term_structure).",
    ),
}  # fmt: skip


def vol_chart(name: str, data: Columns) -> Chart:
    """Per underlying, one line per vendor, venue and the chart's key (gid ``vendor|venue|underlying|key``)."""
    title, mart, key, xy, label, xlabel, caption = VOL_CHARTS[name]
    fig, panels = _panels(data, ("underlying",), 3.0)
    for (ax,), coin, rows in panels:
        ax.set(xlabel=xlabel, ylabel="implied volatility, %")
        ax.grid(alpha=0.3)
        if not rows:  # the axes stay, labelled: what the chart would show
            ax.text(0.5, 0.5, "no option marks in this range", ha="center", transform=ax.transAxes)
            continue
        lines = _groups(data, ("vendor", "venue", "underlying", key), rows)
        _lines(ax, data, lines, xy, label, "{0}|{1}|{2}|{3}")
        for line in ax.get_lines():
            line.set(marker="o", ms=4)
        ax.set_title(f"{coin[0]} at {max(data['ts'][i] for i in rows):%Y-%m-%d %H:%M} UTC", fontsize=10)
        _legend(ax)
    return Chart(name, title, caption, fig, mart)
