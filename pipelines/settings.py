"""Where things live, read from the environment once (see CONTRACT.md for the variables)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = REPO_ROOT / "sql"
DEMO_UNIVERSE = Path(__file__).resolve().parent / "universe" / "demo.yaml"

# Each default written once: the dataclass, the environment, the Dagster resource and the SQL views read these.
MARK_LAST_GAP_BPS = 5.0
"""rpt_mark_last_gap threshold (~99th percentile of 2026 BTC/ETH hourly gaps)."""
DIVERGENCE_BPS = 25.0
"""Cross-vendor divergence that Dagster flags as a warning."""
MAX_AGE_HOURS = 36.0
"""Freshness bound of `markhouse status` and the asset checks."""


@dataclass(frozen=True)
class Settings:
    warehouse_path: Path
    serving_path: Path
    universe_path: Path
    mark_last_gap_bps: float = MARK_LAST_GAP_BPS
    divergence_bps: float = DIVERGENCE_BPS
    max_age_hours: float = MAX_AGE_HOURS

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            warehouse_path=Path(os.environ.get("MARKHOUSE_WAREHOUSE", "warehouse/markhouse.duckdb")),
            serving_path=Path(os.environ.get("MARKHOUSE_SERVING", "warehouse/serving.duckdb")),
            universe_path=Path(os.environ.get("MARKHOUSE_UNIVERSE", str(DEMO_UNIVERSE))),
            mark_last_gap_bps=float(os.environ.get("MARKHOUSE_MARK_LAST_GAP_BPS", MARK_LAST_GAP_BPS)),
            divergence_bps=float(os.environ.get("MARKHOUSE_DIVERGENCE_BPS", DIVERGENCE_BPS)),
            max_age_hours=float(os.environ.get("MARKHOUSE_MAX_AGE_HOURS", MAX_AGE_HOURS)),
        )
