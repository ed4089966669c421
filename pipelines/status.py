"""``markhouse status``: coverage and freshness per vendor, instrument and month. Reads the serving
copy, so it never waits for (or blocks) a backfill."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from pathlib import Path

from pipelines import sources
from pipelines.emulator.server import DATA_END
from pipelines.months import months_between
from pipelines.warehouse.lake import read_sql
from pipelines.warehouse.serving import open_serving

_INTERVALS = ("1m", "5m", "10m", "15m", "30m", "1h", "4h", "1d")
INTERVAL_SECONDS = {i: int(i[:-1]) * {"m": 60, "h": 3600, "d": 86400}[i[-1]] for i in _INTERVALS}
INTERVALS_SQL = ", ".join(f"('{k}', {v})" for k, v in INTERVAL_SECONDS.items())  # as VALUES rows


def all_vendors_embedded() -> bool:
    """No vendor was given a base URL or a key: everything comes from the embedded emulator."""
    return not any(source.configured() for source in sources.sources())


def judgement_time() -> datetime:
    """Now, or the emulator's "now" when it is the only source (the wall clock calls every demo stale)."""
    return DATA_END if all_vendors_embedded() else datetime.now(UTC)


@dataclass(frozen=True)
class MonthCoverage:
    vendor: str
    venue: str
    instrument_key: str
    interval: str
    month: date
    expected_rows: int
    loaded_rows: int
    missing_intervals: int
    last_ts: datetime


class ProblemKind(Enum):
    """What a problem is: the asset checks split freshness from completeness by it."""

    MISSING_MONTHS = "missing_months"
    MISSING_INTERVALS = "missing_intervals"
    STALE = "stale"
    VENDOR_BASIS = "vendor_basis"  # Aperiodic's basis metric disagrees with mark - index


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    text: str  # the line people read (``markhouse status``, the checks' metadata)


@dataclass
class StatusReport:
    as_of: datetime
    published_snapshot: int | None = None
    published_at: datetime | None = None
    months: list[MonthCoverage] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # vendor -> "vendor" | "emulator" (raw.load_log)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def demo(self) -> bool:
        """Every vendor's rows came from the embedded emulator: real data replayed, not a feed."""
        return bool(self.origins) and set(self.origins.values()) == {"emulator"}


def build_report(
    serving_path: Path, *, as_of: datetime, max_age_hours: float, missing_tolerance: int = 0
) -> StatusReport:
    with open_serving(serving_path) as con:
        rows = con.execute(
            read_sql("status/coverage_as_of").format(intervals=INTERVALS_SQL), {"as_of": as_of}
        ).fetchall()
        publication = con.execute("select snapshot_id, published_at from meta.publication").fetchone()
        basis = con.execute(read_sql("status/basis_check")).fetchall()
        origins = con.execute(read_sql("status/origins")).fetchall()
    report = StatusReport(as_of, *(publication or (None, None)))
    report.origins = dict(origins)

    def problem(kind: ProblemKind, text: str) -> None:
        report.problems.append(Problem(kind, text))

    for venue, key, ts_type, interval, bad, compared, worst, first in basis:
        text = f"aperiodic {venue} {key} {interval} {ts_type}: the vendor's basis disagrees with mark - index"
        text += f" on {bad} of {compared} intervals (worst {worst:.3g} bps of the index, first {first:%Y-%m-%d %H:%M})"
        problem(ProblemKind.VENDOR_BASIS, text)
    series: dict[tuple[str, str, str, datetime | None], list[MonthCoverage]] = {}  # (..., expiry) -> months
    for *columns, expiry in rows:
        cov = MonthCoverage(*columns)
        report.months.append(cov)
        series.setdefault((cov.vendor, cov.venue, cov.instrument_key, expiry), []).append(cov)
    current_month = date(as_of.year, as_of.month, 1)
    # the running month is judged by freshness below, not as missing
    last_complete = (current_month - timedelta(days=1)).replace(day=1)
    for (vendor, venue, key, expiry), months in series.items():
        name = f"{vendor} {venue} {key}"
        end = last_complete if expiry is None else min(last_complete, date(expiry.year, expiry.month, 1))
        have = {m.month for m in months}
        if gaps := [m for m in months_between(min(have), end) if m not in have]:
            problem(
                ProblemKind.MISSING_MONTHS, f"{name}: missing months {', '.join(f'{m:%Y-%m}' for m in gaps)}"
            )
        for m in months:
            if m.missing_intervals > missing_tolerance and m.month < current_month:
                problem(
                    ProblemKind.MISSING_INTERVALS,
                    f"{name} {m.month:%Y-%m}: {m.missing_intervals} missing {m.interval} intervals "
                    f"(tolerance {missing_tolerance})",
                )
        last = max(m.last_ts for m in months)
        # an expired contract has no fresher data to get
        if (expiry is None or expiry > as_of) and as_of - last > timedelta(hours=max_age_hours):
            problem(
                ProblemKind.STALE,
                f"{name}: stale, last interval {last:%Y-%m-%d %H:%M} is {_age(as_of - last)} old (bound {max_age_hours:g}h)",
            )
    return report


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"


def print_report(report: StatusReport) -> None:
    if report.demo:
        print(
            "this warehouse is the demo: every row came from the embedded emulator (real data replayed, no vendor)"
        )
    elif report.origins:
        print("data from: " + ", ".join(f"{v} ({o})" for v, o in report.origins.items()))
    print(f"coverage as of {report.as_of:%Y-%m-%d %H:%M} UTC")
    print(
        f"{'vendor':<10} {'venue':<16} {'instrument':<30} {'int':<4} {'month':<8} {'loaded':>8} {'missing':>8}  last (UTC)        age"
    )
    for m in report.months:
        print(
            f"{m.vendor:<10} {m.venue:<16} {m.instrument_key:<30} {m.interval:<4} {m.month:%Y-%m}  "
            f"{m.loaded_rows:>8} {m.missing_intervals:>8}  {m.last_ts:%Y-%m-%d %H:%M}  {_age(report.as_of - m.last_ts)}"
        )
    print("status: OK" if report.ok else f"status: {len(report.problems)} problem(s)")
    for p in report.problems:
        print(f"  - {p.text}")
    if report.published_snapshot is not None and report.published_at is not None:
        print(
            f"published snapshot {report.published_snapshot} at {report.published_at:%Y-%m-%d %H:%M} UTC "
            "(what BI tools and `markhouse query` read)"
        )


def report_json(report: StatusReport) -> dict[str, object]:
    """The report for monitors: the same rows and problems as the text, ages in hours."""
    return {
        "as_of": report.as_of.isoformat(),
        "ok": report.ok,
        "demo": report.demo,
        "origins": report.origins,
        "problems": [p.text for p in report.problems],
        "months": [
            {
                **asdict(m),
                "month": f"{m.month:%Y-%m}",
                "last_ts": m.last_ts.isoformat(),
                "age_hours": round((report.as_of - m.last_ts).total_seconds() / 3600, 3),
            }
            for m in report.months
        ],
    }
