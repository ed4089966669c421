"""No ``from __future__ import annotations``: Dagster reads the field annotations."""

from pipelines.resources import VendorResource
from pipelines.sources.aperiodic.client import REAL_BASE_URL, AperiodicClient


class AperiodicResource(VendorResource):
    vendor = "aperiodic"
    workers: int = 8

    def client(self) -> AperiodicClient:
        base_url, api_key, _ = self.endpoint()
        return AperiodicClient(
            base_url or REAL_BASE_URL, api_key, rate_limit_per_second=self.rate_limit_per_second
        )
