"""The test session works in temporary folders only: the checkout's warehouse/ and .dagster_home/
are the user's (the demo's serving copy, the run history `make dev` shows)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pipelines import sources
from pipelines.cli import instance_home
from pipelines.settings import Settings
from pipelines.warehouse.lake import Warehouse
from tests.conftest import isolated_environment, run_command

REPO = Path(__file__).resolve().parent.parent


def test_every_default_path_points_outside_the_checkout() -> None:
    settings = Settings.from_env()
    for path in (settings.warehouse_path, settings.serving_path, instance_home()):
        assert not path.resolve().is_relative_to(REPO), path
    assert not Path(os.environ["DAGSTER_HOME"]).resolve().is_relative_to(REPO)
    assert not [name for name in os.environ if name.startswith(sources.env_prefixes())]


def test_a_path_in_the_checkouts_own_folders_is_refused_in_tests_and_their_commands(tmp_path: Path) -> None:
    """The guard refuses where a test would write, instead of comparing the folders before and
    after the session (which a user's own demo during `make test` used to fail)."""
    escaped = REPO / "warehouse" / "escaped-by-a-test.sqlite"
    guard = (
        f"is under {REPO / 'warehouse'}, which MARKHOUSE_GUARDED keeps out of reach (a test left its sandbox)"
    )
    with pytest.raises(RuntimeError, match=re.escape(guard)):
        Warehouse(escaped)
    env = {**isolated_environment(tmp_path), "MARKHOUSE_WAREHOUSE": str(escaped)}
    out = run_command("markhouse", "snapshots", env=env)
    assert out.returncode != 0 and guard in out.stderr
    env = {**isolated_environment(tmp_path), "DAGSTER_HOME": str(REPO / ".dagster_home")}
    out = run_command("markhouse", "backfill", "--start", "2026-05", "--end", "2026-05", env=env)
    assert out.returncode != 0 and "which MARKHOUSE_GUARDED keeps out of reach" in out.stderr
    assert not escaped.exists()
