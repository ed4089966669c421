"""Processes: is the one that left this behind still running (for leftovers of killed runs), the
environment of a ``markhouse`` child process that must stay in its own folder, and when a run's
step processes ran."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipelines.settings import REPO_ROOT


def isolated_environment(root: Path, **extra: str) -> dict[str, str]:
    """This process's environment for a ``markhouse`` (or ``dagster``) child that works only under
    ``root``: its own Dagster home (with the repo's ``dagster.yaml``), warehouse and serving copy,
    and no vendor, markhouse or Dagster variable inherited, so it can neither reach a real vendor
    (the vendors' prefixes come from the source registry) nor touch the checkout's warehouse.
    ``extra`` is set last. Used by the tests and the benchmarks."""
    from pipelines import sources

    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    dropped = (*sources.env_prefixes(), "MARKHOUSE_", "DAGSTER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        DAGSTER_HOME=str(home),
        MARKHOUSE_WAREHOUSE=str(root / "warehouse" / "markhouse.sqlite"),
        MARKHOUSE_SERVING=str(root / "warehouse" / "serving.duckdb"),
        **extra,
    )
    return env


def process_exists(pid: int) -> bool:
    """True if a process with ``pid`` exists on this host (whoever owns it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def process_start(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, Linux /proc), or None where unknown.

    With the pid it identifies a process uniquely: a pid reused by a later process has another start.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, starttime


def step_spans(dagster_home: str) -> dict[str, tuple[float, float]]:
    """Step key -> (start, success) timestamps of the one run in the Dagster instance at
    ``dagster_home``, from its event log: what the tests and the parallel bench judge overlap by.
    Raises when the run did not succeed or a step started without succeeding."""
    import dagster as dg

    with dg.DagsterInstance.from_config(dagster_home) as instance:
        (run,) = instance.get_runs()
        if run.status != dg.DagsterRunStatus.SUCCESS:
            raise RuntimeError(f"run {run.run_id} ended {run.status.value}")
        events = instance.all_logs(
            run.run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
        )
    starts = {
        e.step_key: e.timestamp for e in events if e.dagster_event_type == dg.DagsterEventType.STEP_START
    }
    ends = {
        e.step_key: e.timestamp for e in events if e.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS
    }
    if starts.keys() != ends.keys():
        raise RuntimeError(
            f"steps started without succeeding: {sorted(map(str, starts.keys() - ends.keys()))}"
        )
    return {str(key): (starts[key], ends[key]) for key in starts}
