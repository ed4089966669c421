"""No ``from __future__ import annotations``: Dagster reads the field annotations."""

from pipelines.resources import VendorResource
from pipelines.sources.cayolargo import client as cayolargo_client


class CayoLargoResource(VendorResource):
    """No base URL and no key = the embedded emulator; a base URL alone = no auth header. The auth
    header and envelope are settings because the vendor doc leaves them open (README.md)."""

    vendor = "cayolargo"
    env_fields = ("base_url", "api_key", "auth_header", "envelope")

    auth_header: str | None = None
    auth_prefix: str = ""
    envelope: str | None = None
    page_limit: int = cayolargo_client.MAX_LIMIT

    def client(self) -> cayolargo_client.CayoLargoClient:
        base_url, api_key, emulator = self.endpoint()
        auth_header, auth_prefix = self.auth_header, self.auth_prefix
        if emulator is not None:
            handler = emulator.handler("cayolargo")
            auth_header, auth_prefix = handler.auth_header, handler.auth_prefix
        return cayolargo_client.CayoLargoClient(
            base_url or cayolargo_client.REAL_BASE_URL,
            api_key,
            auth_header=auth_header or cayolargo_client.DEFAULT_AUTH_HEADER,
            auth_prefix=auth_prefix,
            envelope=self.envelope or "auto",
            page_limit=self.page_limit,
            rate_limit_per_second=self.rate_limit_per_second,
        )
