"""Dagster resources: the warehouse, and what every vendor's resource (in its folder) shares.

A vendor with no base URL and no key resolves to the embedded local emulator (started once per
process), which is what lets a new user run everything with no accounts. A key without a base URL
means the vendor's real API; a base URL without a key means that host's free preview slice.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from pipelines.settings import MARK_LAST_GAP_BPS, RETENTION_HOURS
from pipelines.storage import Warehouse

_embedded: Any = None
_embedded_lock = threading.Lock()


def embedded_emulator() -> Any:
    """The process-wide local emulator (imported lazily: it is only needed without real vendors)."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            from pipelines.emulator.server import Emulator

            _embedded = Emulator()
            _embedded.start()
        return _embedded


class WarehouseResource(dg.ConfigurableResource):
    path: str
    serving_path: str
    mark_last_gap_bps: float = MARK_LAST_GAP_BPS
    retention_hours: float = RETENTION_HOURS

    def get(self) -> Warehouse:
        return Warehouse(self.path)


def all_vendors_embedded() -> bool:
    """No vendor was given a base URL or a key: everything comes from the embedded emulator."""
    from pipelines import sources

    return not any(source.configured() for source in sources.sources())


def judgement_time() -> datetime:
    """When freshness is judged: now, or the emulator's own "now" when it is the only source (its
    real data ends then; the wall clock would call every demo stale)."""
    if all_vendors_embedded():
        from pipelines.emulator.server import DATA_END

        return DATA_END
    return datetime.now(UTC)


def env_or_none(name: str) -> dg.EnvVar | None:
    """Wire an optional secret or setting as an EnvVar (shown hidden in the UI) only when it is set."""
    return dg.EnvVar(name) if os.environ.get(name) else None
