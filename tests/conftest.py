"""Shared fixtures: a throwaway warehouse under tmp_path and a fresh local emulator per test.

Before any test module is imported, every path markhouse or Dagster would write to by default is
pointed at a temporary folder, and the vendor settings of the shell are dropped (tests run
offline, against the emulator). The session fails if the checkout's own ``warehouse/`` or
``.dagster_home/`` changed while it ran: those are the user's files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines import sources
from pipelines.emulator.server import Emulator
from pipelines.http import RetryPolicy
from pipelines.sources.aperiodic.client import AperiodicClient
from pipelines.warehouse.lake import Warehouse

REPO = Path(__file__).resolve().parent.parent


def isolated_environment(root: Path, **extra: str) -> dict[str, str]:
    """This process's environment for a ``markhouse`` (or ``dagster``) child that works only under
    ``root``: its own Dagster home (with the repo's ``dagster.yaml``), warehouse and serving copy,
    and no vendor, markhouse or Dagster variable inherited, so it can neither reach a real vendor
    (the vendors' prefixes come from the source registry) nor touch the checkout's warehouse.
    ``extra`` is set last."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    dropped = (*sources.env_prefixes(), "MARKHOUSE_", "DAGSTER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        DAGSTER_HOME=str(home),
        MARKHOUSE_WAREHOUSE=str(root / "warehouse" / "markhouse.sqlite"),
        MARKHOUSE_SERVING=str(root / "warehouse" / "serving.duckdb"),
        **extra,
    )
    return env


USER_PATHS = (REPO / "warehouse", REPO / ".dagster_home")
ISOLATED_ENV = ("MARKHOUSE_WAREHOUSE", "MARKHOUSE_SERVING", "DAGSTER_HOME")
_session_tmp: Path | None = None
_user_files_before: dict[str, tuple[int, int]] = {}


def user_files() -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under the checkout's warehouse/ and .dagster_home/."""
    found: dict[str, tuple[int, int]] = {}
    for root in USER_PATHS:
        for path in [root, *root.rglob("*")] if root.exists() else []:
            stat = path.stat()
            found[str(path)] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return found


def pytest_configure(config: pytest.Config) -> None:
    global _session_tmp
    _user_files_before.update(user_files())
    _session_tmp = Path(tempfile.mkdtemp(prefix="markhouse-tests-"))
    for name in list(os.environ):
        if name.startswith((*sources.env_prefixes(), "MARKHOUSE_")):
            del os.environ[name]
    home = _session_tmp / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    os.environ.update(
        MARKHOUSE_WAREHOUSE=str(_session_tmp / "warehouse" / "markhouse.duckdb"),
        MARKHOUSE_SERVING=str(_session_tmp / "warehouse" / "serving.duckdb"),
        DAGSTER_HOME=str(home),
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    changed = sorted(set(_user_files_before.items()) ^ set(user_files().items()), key=lambda item: item[0])
    if changed:
        names = sorted({path for path, _ in changed})
        print(f"\nthe test session changed the checkout's own files: {names}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if _session_tmp is not None:
        shutil.rmtree(_session_tmp, ignore_errors=True)


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse" / "test.sqlite")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[Emulator]:
    """One emulator for a whole test module (starting one per test would cost more than the tests)."""
    with Emulator() as server:
        yield server


def _fresh(emu: Emulator) -> None:
    emu.faults.clear()
    emu.clock.reset()


@pytest.fixture
def emu(module_emulator: Emulator) -> Iterator[Emulator]:
    """The module's emulator as if new: no faults, the real clock and no requests recorded before the
    test; no faults and the real clock left behind for the next."""
    _fresh(module_emulator)
    module_emulator.requests.clear()
    yield module_emulator
    _fresh(module_emulator)


FAST_RETRY = RetryPolicy(max_attempts=4, backoff_base=0.01, max_delay=2.0, max_total_seconds=10.0)


@pytest.fixture
def aperiodic(emulator: Emulator) -> AperiodicClient:
    return AperiodicClient(emulator.base_url("aperiodic"), emulator.api_key, retry=FAST_RETRY)
