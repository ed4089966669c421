"""The warehouse's pool slots (``markhouse_load_<vendor>``, ``markhouse_warehouse``) when no daemon runs.

Why: ``markhouse backfill`` runs its job from its own process, with no Dagster daemon, so nothing
frees the pool slots of a run that was killed (``kill -9``, a reboot, an OOM kill; its step
processes die with it): every later run would wait for them forever. A parallel run holds several
pools' slots at once, so every markhouse pool is looked after. Each CLI run tags itself with its process (host, pid, start time);
the next run checks those processes, frees the slots of runs whose process is gone (marking the
run failed), and waits, saying for whom, for a live run holding a pool it needs. Runs launched by
``dagster dev`` carry no such tags: their daemon's run monitoring looks after them.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pipelines.partitions import MARKHOUSE_POOL_PREFIX, WAREHOUSE_POOL
from pipelines.processes import process_exists, process_start

if TYPE_CHECKING:
    from dagster import DagsterInstance

HOST_TAG = "markhouse/host"
PID_TAG = "markhouse/pid"
STARTED_TAG = "markhouse/process_started"
"""The process's start time (clock ticks since boot, from /proc): a reused pid is not the run."""


class WriterSlotTimeout(RuntimeError):
    """A live run kept the writer slot longer than this run was willing to wait."""


def process_tags() -> dict[str, str]:
    """Tags naming this process, for a later run to check whether it still exists."""
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    started = process_start(os.getpid())
    if started is not None:
        tags[STARTED_TAG] = started
    return tags


@dataclass(frozen=True)
class Holder:
    """A run holding (or queued for) the writer slot."""

    run_id: str
    alive: bool | None  # None: cannot tell from here (another host, or launched by dagster dev)
    description: str


def _holder(instance: DagsterInstance, run_id: str) -> Holder:
    run = instance.get_run_by_id(run_id)
    if run is None:
        return Holder(run_id, False, f"run {run_id[:8]} (no longer in the run history)")
    if run.is_finished:
        return Holder(run_id, False, f"run {run_id[:8]} ({run.status.value.lower()})")
    tags = run.tags
    pid, host = tags.get(PID_TAG), tags.get(HOST_TAG)
    command = tags.get("markhouse/command", "a Dagster run")
    if pid is None or host is None:
        return Holder(run_id, None, f"run {run_id[:8]} ({command}, launched by dagster dev or a daemon)")
    where = f"markhouse {command}, pid {pid} on {host}"
    if host != socket.gethostname():
        return Holder(run_id, None, f"run {run_id[:8]} ({where})")
    recorded = tags.get(STARTED_TAG)
    alive = process_exists(int(pid)) and (recorded is None or process_start(int(pid)) == recorded)
    return Holder(run_id, alive, f"run {run_id[:8]} ({where})")


def markhouse_pools(instance: DagsterInstance) -> list[str]:
    """Every pool of markhouse's assets the instance knows (slots are kept per pool), and the marts'."""
    keys = instance.event_log_storage.get_concurrency_keys()
    return sorted({WAREHOUSE_POOL, *(k for k in keys if k.startswith(MARKHOUSE_POOL_PREFIX))})


def holders(instance: DagsterInstance, pools: Iterable[str] = (WAREHOUSE_POOL,)) -> list[Holder]:
    """Every run with a claimed slot or a queued step in one of ``pools``."""
    run_ids: set[str] = set()
    for pool in pools:
        info = instance.event_log_storage.get_concurrency_info(pool)
        run_ids |= {slot.run_id for slot in info.claimed_slots} | {step.run_id for step in info.pending_steps}
    return [_holder(instance, run_id) for run_id in sorted(run_ids)]


def reclaim_dead(instance: DagsterInstance, say: Callable[[str], None]) -> list[str]:
    """Free every markhouse pool slot of runs whose process is gone (marking an unfinished run
    failed); returns their ids."""
    freed = []
    for holder in holders(instance, markhouse_pools(instance)):
        if holder.alive is not False:
            continue
        run = instance.get_run_by_id(holder.run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, f"its process no longer exists: {holder.description}")
        instance.event_log_storage.free_concurrency_slots_for_run(holder.run_id)  # in every pool
        say(f"markhouse: freed the warehouse writer slot held by {holder.description}: its process is gone")
        freed.append(holder.run_id)
    return freed


def wait_for_slot(
    instance: DagsterInstance,
    say: Callable[[str], None],
    *,
    timeout_seconds: float,
    every_seconds: float = 5.0,
    pools: Iterable[str] = (WAREHOUSE_POOL,),
) -> None:
    """Return once each of ``pools`` (those the run needs) has a free slot; say who holds them
    every ``every_seconds``. (A pool freed later, such as the marts' one while another run's
    loads go on, is waited for by Dagster itself, step by step.)"""
    pools = list(pools)
    started = time.monotonic()
    last_said = -every_seconds
    while True:
        reclaim_dead(instance, say)
        full = []
        for pool in pools:
            info = instance.event_log_storage.get_concurrency_info(pool)
            if info.limit is not None and len(info.claimed_slots) >= info.limit:
                full.append(pool)
        if not full:
            return
        busy = ", ".join(h.description for h in holders(instance, full) if h.alive is not False)
        waited = time.monotonic() - started
        if waited >= timeout_seconds:
            raise WriterSlotTimeout(
                f"gave up after {waited:.0f}s: the warehouse is being written by {busy}; "
                "try again when it ends (or raise --wait)"
            )
        if waited - last_said >= every_seconds:
            now = datetime.now(UTC).strftime("%H:%M:%S")
            say(f"markhouse: {now} waiting for {busy} to finish writing the warehouse ({waited:.0f}s)")
            last_said = waited
        time.sleep(min(1.0, every_seconds))
