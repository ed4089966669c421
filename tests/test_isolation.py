"""The test session works in temporary folders only: the checkout's warehouse/ and .dagster_home/
are the user's (the demo's serving copy, the run history `make dev` shows)."""

from __future__ import annotations

import os
from pathlib import Path

import conftest
import pytest

from pipelines import sources
from pipelines.cli import instance_home
from pipelines.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def test_every_default_path_points_outside_the_checkout() -> None:
    settings = Settings.from_env()
    for path in (settings.warehouse_path, settings.serving_path, instance_home()):
        assert not path.resolve().is_relative_to(REPO), path
    assert not Path(os.environ["DAGSTER_HOME"]).resolve().is_relative_to(REPO)
    assert not [name for name in os.environ if name.startswith(sources.env_prefixes())]


def test_the_session_guard_sees_a_changed_user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What pytest_sessionfinish compares: a new, grown or touched file under the watched folders."""
    watched = tmp_path / "warehouse"
    watched.mkdir()
    (watched / "serving.duckdb").write_bytes(b"demo")
    monkeypatch.setattr(conftest, "USER_PATHS", (watched, tmp_path / ".dagster_home"))
    before = conftest.user_files()
    assert conftest.user_files() == before
    (watched / "serving.duckdb").write_bytes(b"test data")
    assert conftest.user_files() != before
    after = conftest.user_files()
    (watched / ".serving.duckdb.tmp").write_bytes(b"")
    assert set(conftest.user_files()) - set(after) == {str(watched / ".serving.duckdb.tmp")}
