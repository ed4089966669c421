"""No ``from __future__ import annotations``: Dagster reads the field annotations."""

from pipelines.resources import VendorResource
from pipelines.sources.kaiko import client as kaiko_client


class KaikoResource(VendorResource):
    """No base URL and no key = the embedded emulator. Against a real host the rate limit defaults
    to Kaiko's older public 1000 requests/minute; limits are per contract: set yours."""

    vendor = "kaiko"
    REAL_RATE_LIMIT: float = 1000 / 60

    def client(self) -> kaiko_client.KaikoClient:
        base_url, api_key, emulator = self.endpoint()
        rate = self.rate_limit_per_second
        if emulator is None and rate is None:
            rate = self.REAL_RATE_LIMIT
        return kaiko_client.KaikoClient(
            base_url or kaiko_client.REAL_BASE_URL, api_key, rate_limit_per_second=rate
        )
