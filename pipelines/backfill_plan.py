"""What a backfill asks each vendor for, checked before a run: a request that can only load nothing
is refused with what to change (it would run and publish the same marts again)."""

from __future__ import annotations

from pipelines import sources
from pipelines.errors import RequestError
from pipelines.universe import Universe


def carries(universe: Universe, vendor: str, key: str) -> bool:
    return sources.get(vendor).serves(universe.section(vendor), universe.start_month, key)


def plan_backfill(universe: Universe, vendor: str | None, instruments: list[str]) -> dict[str, list[str]]:
    """Vendor -> the Atlas keys to load from it (empty list = everything it is configured for)."""
    present = [v for v in sources.names() if universe.section(v)]
    if not present:
        raise RequestError(
            f"{universe.path} lists no instruments: it has no {', '.join(sources.names())} section; "
            "add one (see pipelines/universe/demo.yaml)"
        )
    if vendor and vendor not in present:
        raise RequestError(
            f"{universe.path} has no {vendor} section, so --vendor {vendor} would load nothing; "
            f"it configures {', '.join(present)}"
        )
    chosen = [vendor] if vendor else present
    if not instruments:
        return {v: [] for v in chosen}
    plan = {v: keys for v in chosen if (keys := [k for k in instruments if carries(universe, v, k)])}
    for key in instruments:
        if not any(key in keys for keys in plan.values()):
            others = [v for v in present if v not in chosen and carries(universe, v, key)]
            who = (
                f"{chosen[0]} does not carry it"
                if len(chosen) == 1
                else f"none of {', '.join(chosen)} carries it"
            )
            where = f"; {' and '.join(others)} {'does' if len(others) == 1 else 'do'}" if others else ""
            # the Atlas keys the universe lists (a source listing coins lists none)
            choices = sorted(
                {i.instrument_key for v in chosen for i in sources.get(v).instruments(universe.section(v))}
            )
            listed = f" (listed: {', '.join(choices)})" if choices else ""
            raise RequestError(f"--instrument {key}: {who} in {universe.path}{listed}{where}")
    return plan
