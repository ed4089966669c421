"""Where things live and the numbers a deployment tunes, read from the environment (CONTRACT.md lists
the variables); each default is written once here, for the dataclass, the Dagster resource and the SQL."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = REPO_ROOT / "sql"
DEMO_UNIVERSE = Path(__file__).resolve().parent / "universe" / "demo.yaml"

MARK_LAST_GAP_BPS = 5.0  # rpt_mark_last_gap threshold (~99th percentile of 2026 BTC/ETH hourly gaps)
DIVERGENCE_BPS = 25.0  # cross-vendor divergence that Dagster flags as a warning
MAX_AGE_HOURS = 36.0  # freshness bound of `markhouse status` and the asset checks
RETENTION_HOURS = 168.0  # snapshots younger than this survive maintenance (time travel)
# fct_futures_rolled: the front rolls at 00:00 UTC this many days before its expiry (CME's equity-index roll)
FUTURES_ROLL_DAYS = 8
# raw rows a marts window may hold: months first (the bench's 4 series of 1m keep 3-month windows,
# 518k rows), then ranges of instruments (models._by_instruments; 25 perpetuals of 1m, 1.1M, are one)
MARTS_WINDOW_ROWS = 1_200_000
# what a vendor's numbers may be, per field (MARKHOUSE_PLAUSIBLE_<FIELD>=min,max overrides one); outside
# is a defect of the file or page, refused
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "price": (1e-12, 1e12),  # any price: a token at 1e-8 USD and an index at 1e6 fit, a subnormal does not
    "funding_rate": (-1.0, 1.0),  # per funding interval: +-100 %
    "open_interest": (0.0, 1e15),
}


def futures_roll_days() -> float:
    return float(os.environ.get("MARKHOUSE_FUTURES_ROLL_DAYS", FUTURES_ROLL_DAYS))


def marts_window_rows() -> int:
    return int(os.environ.get("MARKHOUSE_MARTS_WINDOW_ROWS", MARTS_WINDOW_ROWS))


def plausible_range(field: str) -> tuple[float, float]:
    variable = f"MARKHOUSE_PLAUSIBLE_{field.upper()}"
    if (text := os.environ.get(variable)) is None:
        return PLAUSIBLE[field]
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"{variable}={text!r}: expected min,max (two numbers)") from None
    return low, high


# Folders no path may be under (``os.pathsep``-separated): the test suite sets the checkout's own
# warehouse/ and .dagster_home/, so a test that leaves its sandbox fails where it does
GUARDED = "MARKHOUSE_GUARDED"


def unguarded(path: Path) -> Path:
    for root in filter(None, os.environ.get(GUARDED, "").split(os.pathsep)):
        if path.resolve().is_relative_to(Path(root).resolve()):
            raise RuntimeError(
                f"{path} is under {root}, which {GUARDED} keeps out of reach (a test left its sandbox)"
            )
    return path


@dataclass(frozen=True)
class Settings:
    warehouse_path: Path = Path("warehouse/markhouse.sqlite")
    serving_path: Path = Path("warehouse/serving.duckdb")
    universe_path: Path = DEMO_UNIVERSE
    mark_last_gap_bps: float = MARK_LAST_GAP_BPS
    divergence_bps: float = DIVERGENCE_BPS
    max_age_hours: float = MAX_AGE_HOURS
    retention_hours: float = RETENTION_HOURS

    @classmethod
    def from_env(cls) -> Settings:
        """Each field from ``MARKHOUSE_<FIELD>`` (a path's without ``_PATH``) if set."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if (text := os.environ.get(f"MARKHOUSE_{f.name.removesuffix('_path').upper()}")) is not None:
                values[f.name] = Path(text) if f.name.endswith("_path") else float(text)
        settings = cls(**values)
        for path in (settings.warehouse_path, settings.serving_path):
            unguarded(path)
        return settings
