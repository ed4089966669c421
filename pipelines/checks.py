"""Asset checks on the published marts: ``markhouse status``'s judgement inside Dagster. Errors do not
block (what loaded stays published); divergence is a warning (vendors differ a little). Whether the
runs keep the assets updated is Dagster's own freshness policy (``definitions.py``). No ``from
__future__ import annotations``: Dagster reads the resource annotations."""

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg

from pipelines.resources import WarehouseResource
from pipelines.status import ProblemKind, build_report
from pipelines.warehouse.lake import read_sql
from pipelines.warehouse.serving import open_serving


def build_mart_checks(
    max_age_hours: float, divergence_bps: float, as_of: Callable[[], datetime], missing_tolerance: int = 0
) -> list[dg.AssetChecksDefinition]:
    """``as_of`` is the clock freshness is judged by (the emulator's own when it is the source)."""
    # (mart, check) -> the kinds of status problems that fail it (none: the divergence query), the
    # line the UI shows
    checks: dict[tuple[str, str], tuple[set[ProblemKind], str]] = {
        ("rpt_coverage", "series_up_to_date"): (
            {ProblemKind.STALE},
            f"Every series' newest interval is at most {max_age_hours:g} h old (by the emulator's clock when "
            "it serves; expired contracts excepted): the vendors' data, where the freshness policy judges the runs.",
        ),
        ("rpt_coverage", "no_missing_intervals"): (
            {ProblemKind.MISSING_MONTHS, ProblemKind.MISSING_INTERVALS},
            f"Every past month of every series is loaded, none missing more than {missing_tolerance} "
            "intervals (the running month: series_up_to_date).",
        ),
        ("fct_carry", "vendor_basis_agrees"): (
            {ProblemKind.VENDOR_BASIS},
            "Aperiodic's own basis metric equals mark - index within 0.01 bps of the index on every "
            "interval both carry.",
        ),
        ("rpt_vendor_divergence", "vendors_agree"): (
            set(),
            f"Vendors serving the same instrument and interval differ by at most {divergence_bps:g} bps in "
            "mark, index and last (a warning).",
        ),
    }

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(name, asset=dg.AssetKey(["marts", mart]), description=text)
            for (mart, name), (_, text) in checks.items()
        ],
        can_subset=True,
    )
    def mart_checks(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.AssetCheckResult]:
        serving = Path(warehouse.serving_path)
        judged_at = as_of()
        report = build_report(
            serving, as_of=judged_at, max_age_hours=max_age_hours, missing_tolerance=missing_tolerance
        )
        for (mart, name), (kinds, _) in checks.items():
            key = dg.AssetCheckKey(dg.AssetKey(["marts", mart]), name)
            if key not in context.selected_asset_check_keys:
                continue
            metadata: dict[str, Any]
            if kinds:
                problems = [p.text for p in report.problems if p.kind in kinds]
                passed, severity = not problems, dg.AssetCheckSeverity.ERROR
                metadata = {"problems": dg.MetadataValue.json(problems[:50]), "count": len(problems)}
                metadata["as_of"] = judged_at.isoformat()
            else:
                with open_serving(serving) as con:
                    rows = con.execute(read_sql("status/divergence"), {"bound": divergence_bps}).fetchall()
                pairs = [
                    {
                        "vendors": f"{r[0]}/{r[1]}",
                        "instrument": f"{r[2]} {r[3]} {r[4]}",
                        "intervals": r[5],
                        "worst_mark_bps": round(r[6] or 0, 2),
                        "worst_last_bps": round(r[7] or 0, 2),
                    }
                    for r in rows[:20]
                ]
                passed, severity = not rows, dg.AssetCheckSeverity.WARN
                metadata = {"bound_bps": divergence_bps, "pairs_beyond_bound": dg.MetadataValue.json(pairs)}
            yield dg.AssetCheckResult(
                check_name=name, asset_key=key.asset_key, passed=passed, severity=severity, metadata=metadata
            )

    return [mart_checks]
