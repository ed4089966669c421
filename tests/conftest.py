"""Shared fixtures: a throwaway warehouse under tmp_path and a fresh local emulator per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.emulator.server import Emulator
from pipelines.http import RetryPolicy
from pipelines.sources.aperiodic.client import AperiodicClient
from pipelines.storage import Warehouse


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse" / "test.sqlite")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


FAST_RETRY = RetryPolicy(max_attempts=4, backoff_base=0.01, max_delay=2.0, max_total_seconds=10.0)


@pytest.fixture
def aperiodic(emulator: Emulator) -> AperiodicClient:
    return AperiodicClient(emulator.aperiodic_base_url, emulator.api_key, retry=FAST_RETRY)
