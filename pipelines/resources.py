"""Dagster resources: the warehouse, and what every vendor's resource (in its folder) shares. A
vendor with no base URL and no key is the embedded emulator (so a new user needs no accounts); a
key alone is the vendor's real API; a base URL alone that host's free preview slice."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Self

import dagster as dg
import duckdb

from pipelines.emulator.server import Emulator
from pipelines.settings import MARK_LAST_GAP_BPS, RETENTION_HOURS
from pipelines.warehouse.concurrency import killed_holder
from pipelines.warehouse.lake import Warehouse

_embedded: Emulator | None = None
_embedded_lock = threading.Lock()


def embedded_emulator() -> Emulator:
    """The process-wide local emulator, started on first use (only needed without real vendors)."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            _embedded = Emulator().start()
        return _embedded


# on the jobs that write the warehouse: what a deployment's run queue limits across hosts
# (deploy/postgres/dagster.yaml); on one host the warehouse's lock orders them
WRITES_WAREHOUSE = {"markhouse/writes": "warehouse"}
COMMAND_TAG = "markhouse/command"  # on the runs ``markhouse`` starts: how a waiting run names the holder


class WarehouseResource(dg.ConfigurableResource):
    path: str
    serving_path: str
    mark_last_gap_bps: float = MARK_LAST_GAP_BPS
    retention_hours: float = RETENTION_HOURS

    def get(self) -> Warehouse:
        return Warehouse(self.path)

    @contextmanager
    def writer(self, context: dg.AssetExecutionContext) -> Iterator[duckdb.DuckDBPyConnection]:
        """The step's hold on the warehouse, named for its run (``pipelines.warehouse.concurrency``)."""
        warehouse = self.get()
        command = context.run.tags.get(COMMAND_TAG)
        holder = (
            f"run {context.run_id[:8]} ({f'markhouse {command}' if command else 'a Dagster run'}, "
            f"pid {os.getpid()} on {socket.gethostname()})"
        )
        with warehouse.writer(holder=holder, run_id=context.run_id, on_wait=context.log.info) as con:
            settle_killed_run(context.instance, killed_holder(warehouse.lock_path), context.log.warning)
            yield con


def settle_killed_run(
    instance: dg.DagsterInstance, previous: dict[str, Any] | None, say: Callable[[str], None]
) -> None:
    """Say that the previous writer was killed, and mark its run failed (not running forever in the UI)."""
    if not previous:
        return
    say(
        f"markhouse: the previous writer, {previous.get('holder')}, ended without finishing: its process "
        "is gone; what it committed stays, the rest was discarded"
    )
    run = instance.get_run_by_id(previous["run_id"]) if previous.get("run_id") else None
    if run is not None and not run.is_finished:
        instance.report_run_failed(run, f"its process no longer exists ({previous.get('holder')})")


class VendorResource(dg.ConfigurableResource):
    """What every vendor's resource holds; ``from_env`` reads ``<VENDOR>_<FIELD>`` of ``env_fields``."""

    vendor: ClassVar[str]
    env_fields: ClassVar[tuple[str, ...]] = ("base_url", "api_key")

    base_url: str | None = None
    api_key: str | None = None
    workers: int = 4
    rate_limit_per_second: float | None = None

    def endpoint(self) -> tuple[str | None, str | None, Emulator | None]:
        """(base URL, key, the embedded emulator when it serves this vendor, else None)."""
        if self.base_url or self.api_key:
            return self.base_url, self.api_key, None
        emulator = embedded_emulator()
        return emulator.base_url(self.vendor), emulator.api_key, emulator

    @classmethod
    def from_env(cls) -> Self:
        # each setting that is set, as an EnvVar (a secret shows hidden in the UI)
        names = {f: f"{cls.vendor.upper()}_{f.upper()}" for f in cls.env_fields}
        env: dict[str, Any] = {f: dg.EnvVar(n) if os.environ.get(n) else None for f, n in names.items()}
        return cls(**env)
