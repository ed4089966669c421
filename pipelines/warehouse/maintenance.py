"""Keeping the lake's files in step with its data: verify them, merge small files, expire old
snapshots (never the published one a reader may hold), delete files no snapshot references."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import duckdb

from pipelines.redaction import redact
from pipelines.warehouse.concurrency import Con
from pipelines.warehouse.integrity import verify
from pipelines.warehouse.lake import (
    LAKE,
    Warehouse,
    WarehouseCorruptError,
    _published_ids,
    _quote,
    current_snapshot,
    expire_snapshots,
    read_sql,
)
from pipelines.warehouse.serving import PublishResult, publish_serving

log = logging.getLogger("markhouse.warehouse")


class MaintenanceResult(NamedTuple):
    merged: bool
    expired: int
    deleted_files: int
    bytes_before: int
    bytes_after: int
    republished: PublishResult | None
    seconds: float
    verified: int  # files of the published and latest snapshot found sound


def data_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def maintain(
    warehouse: Warehouse, serving_path: Path, retention: timedelta = timedelta(days=7)
) -> MaintenanceResult:
    """Merge small files (nothing committed since the publish: then republish), expire snapshots and files
    older than ``retention`` (a reader may still scan them) but the published one."""
    started = time.perf_counter()
    exists = not warehouse.data_is_remote and (warehouse.catalog or warehouse.path.exists())
    verified = verify(warehouse) if exists else None  # a lake not created yet has nothing to verify
    if verified and verified.damaged:  # merging would fail on them, and a reader does already
        raise WarehouseCorruptError(
            f"{len(verified.damaged)} damaged files, nothing maintained: {verified.damaged[0].line()}; "
            "`markhouse verify` lists them, `markhouse repair` reloads their months"
        )
    lake = _quote(LAKE)
    with warehouse.writer() as con:
        before = 0 if warehouse.data_is_remote else data_bytes(warehouse.data_path)
        last = next(reversed(_published_ids(con)), None)
        republished = None
        # the publication record itself is the one commit after the published snapshot
        if merged := last is not None and current_snapshot(con) == last + 1:
            con.execute(
                f"call ducklake_merge_adjacent_files({lake}); call ducklake_rewrite_data_files({lake})"
            )
            if current_snapshot(con) != last + 1:
                republished = publish_serving(con, serving_path)
                last = republished.snapshot
        cutoff = datetime.now().astimezone() - retention
        keep = {current_snapshot(con), last}
        sql = f"select snapshot_id from {LAKE}.snapshots() where snapshot_time < $c"
        old = [int(i) for (i,) in con.execute(sql, {"c": cutoff}).fetchall() if int(i) not in keep]
        expire_snapshots(con, old)
        deleted = con.execute(
            f"call ducklake_cleanup_old_files({lake}, older_than => $c)", {"c": cutoff + timedelta(seconds=1)}
        ).fetchall()
        deleted += con.execute(
            f"call ducklake_delete_orphaned_files({lake}, older_than => $c)", {"c": cutoff}
        ).fetchall()
        after = 0 if warehouse.data_is_remote else data_bytes(warehouse.data_path)
    seconds = time.perf_counter() - started
    files = verified.files if verified else 0
    return MaintenanceResult(merged, len(old), len(deleted), before, after, republished, seconds, files)


def time_travel_note(con: Con, retention: timedelta) -> str | None:
    """A line for a warehouse whose replaced files, older than ``retention``, outweigh its current data:
    every refresh keeps the month it replaced for time travel, and only maintenance frees it (a cron user
    without the daemon's nightly job would fill the disk unawares: 200 refreshes of a month, 7.9 GB)."""
    cutoff = datetime.now().astimezone() - retention
    try:
        sql = read_sql("warehouse/time_travel_bytes")
        held, replaced = con.execute(sql, {"cutoff": cutoff}).fetchone() or (0, 0)
    except duckdb.Error as exc:  # advice only: it never fails a run that has published
        log.info("could not size the replaced files: %s", redact(str(exc)))
        return None
    if replaced <= held:
        return None
    hours = retention.total_seconds() / 3600
    return (
        f"note: {replaced / 2**20:,.1f} MiB of replaced files older than {hours:g} h are kept for time travel, "
        f"more than the current data ({held / 2**20:,.1f} MiB); `markhouse maintain` frees them (so does the "
        "nightly_maintenance schedule, with the Dagster daemon)"
    )
