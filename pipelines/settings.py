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

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            warehouse_path=Path(os.environ.get("MARKHOUSE_WAREHOUSE", "warehouse/markhouse.duckdb")),
            serving_path=Path(os.environ.get("MARKHOUSE_SERVING", "warehouse/serving.duckdb")),
            universe_path=Path(os.environ.get("MARKHOUSE_UNIVERSE", str(DEMO_UNIVERSE))),
        )
