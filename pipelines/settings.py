"""Where things live, read from the environment once (see CONTRACT.md for the variables)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = REPO_ROOT / "sql"
DEMO_UNIVERSE = Path(__file__).resolve().parent / "universe" / "demo.yaml"


@dataclass(frozen=True)
class Settings:
    warehouse_path: Path
    serving_path: Path
    universe_path: Path
    mark_last_gap_bps: float = 5.0  # rpt_mark_last_gap threshold (~99th pct of 2026 BTC/ETH hourly gaps)
    divergence_bps: float = 25.0  # cross-vendor divergence that Dagster flags as a warning
    max_age_hours: float = 36.0  # freshness bound of `markhouse status` and the asset checks
    retention_hours: float = 168.0  # snapshots younger than this survive maintenance (time travel)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            warehouse_path=Path(os.environ.get("MARKHOUSE_WAREHOUSE", "warehouse/markhouse.sqlite")),
            serving_path=Path(os.environ.get("MARKHOUSE_SERVING", "warehouse/serving.duckdb")),
            universe_path=Path(os.environ.get("MARKHOUSE_UNIVERSE", str(DEMO_UNIVERSE))),
            mark_last_gap_bps=float(os.environ.get("MARKHOUSE_MARK_LAST_GAP_BPS", 5.0)),
            divergence_bps=float(os.environ.get("MARKHOUSE_DIVERGENCE_BPS", 25.0)),
            max_age_hours=float(os.environ.get("MARKHOUSE_MAX_AGE_HOURS", 36.0)),
            retention_hours=float(os.environ.get("MARKHOUSE_RETENTION_HOURS", 168.0)),
        )

    @property
    def report_settings(self) -> dict[str, float]:
        """What the report views read from ref.settings."""
        return {"mark_last_gap_threshold_bps": self.mark_last_gap_bps}
