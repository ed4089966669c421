"""No ``from __future__ import annotations``: Dagster reads the field annotations."""

import dagster as dg

from pipelines.resources import embedded_emulator, env_or_none
from pipelines.sources.aperiodic.client import REAL_BASE_URL, AperiodicClient


class AperiodicResource(dg.ConfigurableResource):
    base_url: str | None = None
    api_key: str | None = None
    workers: int = 8
    rate_limit_per_second: float | None = None

    def client(self) -> AperiodicClient:
        base_url, api_key = self.base_url, self.api_key
        if not base_url and not api_key:
            emulator = embedded_emulator()
            base_url, api_key = emulator.base_url("aperiodic"), emulator.api_key
        return AperiodicClient(
            base_url or REAL_BASE_URL, api_key, rate_limit_per_second=self.rate_limit_per_second
        )

    @classmethod
    def from_env(cls) -> "AperiodicResource":
        return cls(base_url=env_or_none("APERIODIC_BASE_URL"), api_key=env_or_none("APERIODIC_API_KEY"))
