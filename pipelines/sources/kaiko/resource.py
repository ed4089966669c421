"""No ``from __future__ import annotations``: Dagster reads the field annotations."""

import dagster as dg

from pipelines.resources import embedded_emulator, env_or_none
from pipelines.sources.kaiko import client as kaiko_client


class KaikoResource(dg.ConfigurableResource):
    """No base URL and no key = the embedded emulator. Against a real host the rate limit defaults
    to Kaiko's older public 1000 requests/minute; limits are per contract: set yours."""

    base_url: str | None = None
    api_key: str | None = None
    workers: int = 4
    rate_limit_per_second: float | None = None

    REAL_RATE_LIMIT: float = 1000 / 60

    def client(self) -> kaiko_client.KaikoClient:
        base_url, api_key, rate = self.base_url, self.api_key, self.rate_limit_per_second
        if not base_url and not api_key:
            emulator = embedded_emulator()
            base_url, api_key = emulator.base_url("kaiko"), emulator.api_key
        elif rate is None:
            rate = self.REAL_RATE_LIMIT
        return kaiko_client.KaikoClient(
            base_url or kaiko_client.REAL_BASE_URL, api_key, rate_limit_per_second=rate
        )

    @classmethod
    def from_env(cls) -> "KaikoResource":
        return cls(base_url=env_or_none("KAIKO_BASE_URL"), api_key=env_or_none("KAIKO_API_KEY"))
