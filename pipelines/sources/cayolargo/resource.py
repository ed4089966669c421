"""No ``from __future__ import annotations``: Dagster reads the field annotations."""

import dagster as dg

from pipelines.resources import embedded_emulator, env_or_none
from pipelines.sources.cayolargo import client as cayolargo_client


class CayoLargoResource(dg.ConfigurableResource):
    """No base URL and no key = the embedded emulator; a base URL alone = no auth header. The auth
    header and envelope are settings because the vendor doc leaves them open (README.md)."""

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
            base_url, api_key = emulator.base_url("cayolargo"), emulator.api_key
            handler = emulator.handler("cayolargo")
            auth_header, auth_prefix = handler.auth_header, handler.auth_prefix
        return cayolargo_client.CayoLargoClient(
            base_url or cayolargo_client.REAL_BASE_URL,
            api_key,
            auth_header=auth_header or cayolargo_client.DEFAULT_AUTH_HEADER,
            auth_prefix=auth_prefix,
            envelope=envelope or "auto",
            page_limit=self.page_limit,
            rate_limit_per_second=self.rate_limit_per_second,
        )

    @classmethod
    def from_env(cls) -> "CayoLargoResource":
        return cls(
            base_url=env_or_none("CAYOLARGO_BASE_URL"),
            api_key=env_or_none("CAYOLARGO_API_KEY"),
            auth_header=env_or_none("CAYOLARGO_AUTH_HEADER"),
            envelope=env_or_none("CAYOLARGO_ENVELOPE"),
        )
