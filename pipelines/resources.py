"""Dagster resources: the warehouse and one client per vendor.

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
from pipelines.sources.aperiodic.client import REAL_BASE_URL, AperiodicClient
from pipelines.sources.cayolargo import client as cayolargo_client
from pipelines.sources.kaiko import client as kaiko_client
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


class KaikoResource(dg.ConfigurableResource):
    """Kaiko: no base URL and no key = the embedded emulator; a key alone = the real EU root.

    ``rate_limit_per_second`` caps request starts across all paging threads; unset, it is
    ``REAL_RATE_LIMIT`` (Kaiko's older public 1000 requests/minute) against a real host and
    unlimited against the emulator. Limits are per contract: set yours.
    """

    base_url: str | None = None
    api_key: str | None = None
    workers: int = 4
    rate_limit_per_second: float | None = None

    REAL_RATE_LIMIT: float = 1000 / 60

    def client(self) -> kaiko_client.KaikoClient:
        base_url, api_key, rate = self.base_url, self.api_key, self.rate_limit_per_second
        if not base_url and not api_key:
            emulator = embedded_emulator()
            base_url, api_key = emulator.kaiko_base_url, emulator.api_key
        elif rate is None:
            rate = self.REAL_RATE_LIMIT
        return kaiko_client.KaikoClient(
            base_url or kaiko_client.REAL_BASE_URL, api_key, rate_limit_per_second=rate
        )


class CayoLargoResource(dg.ConfigurableResource):
    """CayøLargo: no base URL and no key = the embedded emulator; a key alone = the assumed real
    root ``https://api.cayolargo.com``; a base URL alone = that host without an auth header.

    The vendor doc leaves the auth header and the envelope open: ``auth_header`` (default
    ``X-API-Key``, env ``CAYOLARGO_AUTH_HEADER``) with ``auth_prefix`` (e.g. ``"Bearer "``), and
    ``envelope`` (``auto`` = a bare list or an object with ``data``/``rows``/``result(s)``; ``list``;
    or the name of the rows key; env ``CAYOLARGO_ENVELOPE``).
    """

    base_url: str | None = None
    api_key: str | None = None
    auth_header: str | None = None
    auth_prefix: str = ""
    envelope: str | None = None
    page_limit: int = cayolargo_client.MAX_LIMIT
    workers: int = 4
    rate_limit_per_second: float | None = None

    def client(self) -> cayolargo_client.CayoLargoClient:
        base_url, api_key = self.base_url, self.api_key
        auth_header, auth_prefix, envelope = self.auth_header, self.auth_prefix, self.envelope
        if not base_url and not api_key:
            emulator = embedded_emulator()
            base_url, api_key = emulator.cayolargo_base_url, emulator.api_key
            auth_header, auth_prefix = emulator.cayolargo.auth_header, emulator.cayolargo.auth_prefix
        return cayolargo_client.CayoLargoClient(
            base_url or cayolargo_client.REAL_BASE_URL,
            api_key,
            auth_header=auth_header or cayolargo_client.DEFAULT_AUTH_HEADER,
            auth_prefix=auth_prefix,
            envelope=envelope or "auto",
            page_limit=self.page_limit,
            rate_limit_per_second=self.rate_limit_per_second,
        )


def all_vendors_embedded() -> bool:
    """No vendor was given a base URL or a key: everything comes from the embedded emulator."""
    return not any(
        os.environ.get(f"{vendor}_{what}")
        for vendor in ("APERIODIC", "KAIKO", "CAYOLARGO")
        for what in ("BASE_URL", "API_KEY")
    )


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
