"""Dagster resources: the warehouse and one client per vendor.

A vendor with no base URL and no key resolves to the embedded local emulator (started once per
process), which is what lets a new user run everything with no accounts. A key without a base URL
means the vendor's real API; a base URL without a key means that host's free preview slice.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import dagster as dg

from pipelines.sources.aperiodic.client import REAL_BASE_URL, AperiodicClient
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
    mark_last_gap_bps: float = 5.0

    def get(self) -> Warehouse:
        return Warehouse(self.path)


class AperiodicResource(dg.ConfigurableResource):
    base_url: str | None = None
    api_key: str | None = None
    workers: int = 8
    rate_limit_per_second: float | None = None

    def client(self) -> AperiodicClient:
        base_url, api_key = self.base_url, self.api_key
        if not base_url and not api_key:
            emulator = embedded_emulator()
            base_url, api_key = emulator.aperiodic_base_url, emulator.api_key
        return AperiodicClient(
            base_url or REAL_BASE_URL, api_key, rate_limit_per_second=self.rate_limit_per_second
        )


def env_or_none(name: str) -> dg.EnvVar | None:
    """Wire an optional secret or setting as an EnvVar (shown hidden in the UI) only when it is set."""
    return dg.EnvVar(name) if os.environ.get(name) else None
