"""Trusting the lake's files: ``verify`` checks them against the catalog, ``drop_damaged`` takes the
months of damaged ones out of the latest snapshot, ``backup`` copies the published snapshot."""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow.parquet as pq

from pipelines.warehouse.concurrency import transaction
from pipelines.warehouse.lake import (
    LAKE,
    Warehouse,
    _published_ids,
    current_snapshot,
    expire_snapshots,
    latest_published,
    read_sql,
    used_params,
)


class DamagedFile(NamedTuple):
    table: str
    month: str | None  # 'YYYY-MM'; None for an unpartitioned table
    path: str
    problem: str

    def line(self) -> str:
        return f"{self.table} {self.month or '(all months)'}: {self.path}: {self.problem}"


class Verified(NamedTuple):
    published: int
    latest: int
    files: int
    damaged: list[DamagedFile]


def _files(con: duckdb.DuckDBPyConnection, warehouse: Warehouse, snapshots: list[int]) -> list[tuple]:
    """(kind, data_file_id, table, month, path, size, rows) of every file ``snapshots`` reference."""
    params = {"snapshots": snapshots, "data_path": warehouse.data_location}
    return con.execute(read_sql("warehouse/files"), params).fetchall()


def _problem(kind: str, path: str, size: int, rows: int, full: bool) -> str | None:
    """What is wrong with one file against its catalog record, or None (``full``: every page read too)."""
    try:
        actual = os.stat(path).st_size
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if actual != size:
        return f"{actual} bytes where the catalog recorded {size}"
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PAR1":
                return "not a parquet file (its first bytes are damaged)"
        parquet = pq.ParquetFile(path)
        if kind == "data" and parquet.metadata.num_rows != rows:
            return f"{parquet.metadata.num_rows} rows where the catalog recorded {rows}"
        for group in range(parquet.num_row_groups if full else 0):
            parquet.read_row_group(group)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        return f"unreadable ({str(exc).splitlines()[0][:200]})"
    return None


def _damaged(files: list[tuple], full: bool = False) -> list[DamagedFile]:
    return [
        DamagedFile(table, month, path, problem)
        for kind, _, table, month, path, size, rows in files
        if (problem := _problem(kind, path, size, rows, full)) is not None
    ]


def verify(warehouse: Warehouse, full: bool = False) -> Verified:
    """The published and latest snapshots' files against the catalog (DuckLake keeps no checksums): footers
    only, to stay fast; a page changed in place at the same size needs ``full`` (a scan)."""
    if warehouse.data_is_remote:
        raise RuntimeError(f"verify reads a local data folder; the data path is {warehouse.data_location}")
    with warehouse.reader(latest=True) as con:
        latest = current_snapshot(con)
        published = (_published_ids(con) or [latest])[-1]
        files = _files(con, warehouse, sorted({published, latest}))
    return Verified(published, latest, len(files), _damaged(files, full))


def drop_damaged(con: duckdb.DuckDBPyConnection, warehouse: Warehouse) -> list[DamagedFile]:
    """Take the (table, month)s holding a damaged file out of the latest snapshot in one commit."""
    files = _files(con, warehouse, [current_snapshot(con)])
    damaged = _damaged(files)
    if unpartitioned := sorted({d.table for d in damaged if d.month is None}):
        raise RuntimeError(
            f"{', '.join(unpartitioned)} is not partitioned by month and cannot be reloaded: restore the "
            "warehouse from a backup (`markhouse backup`) or rebuild it with `markhouse backfill`"
        )
    months = {(d.table, d.month) for d in damaged}
    if ids := sorted({f[1] for f in files if (f[2], f[3]) in months}):
        message = "removed damaged months: " + ", ".join(f"{t} {m}" for t, m in sorted(months))
        with transaction(con):
            for statement in read_sql("warehouse/drop_files").split(";\n\n"):
                con.execute(statement, used_params(statement, {"files": ids, "message": message}))
    return damaged


def backup(warehouse: Warehouse, dest: Path) -> tuple[int, int]:
    """Catalog (SQLite's online backup: writers go on) and files from the published snapshot on."""
    if warehouse.catalog is not None or warehouse.data_is_remote:
        raise RuntimeError(
            "backup copies the embedded catalog and a local data folder (use the database's own backup)"
        )
    dest.mkdir(parents=True, exist_ok=False)
    copy = Warehouse(dest / warehouse.path.name)
    with (
        closing(sqlite3.connect(f"file:{warehouse.path}?mode=ro", uri=True)) as source,
        closing(sqlite3.connect(copy.path)) as target,
    ):
        source.backup(target)
    # the copied catalog, reading the original's files (not copied yet)
    with Warehouse(copy.path, data_path=str(warehouse.data_path)).reader(latest=True) as con:
        published = latest_published(con)
        held = [s for (s,) in con.execute(f"select snapshot_id from {LAKE}.snapshots()").fetchall()]
        files = _files(con, warehouse, [s for s in held if s >= published])
    for *_, path, _, _ in files:
        target_path = copy.data_path / os.path.relpath(path, warehouse.data_path)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target_path)
    with copy.writer() as con:
        expire_snapshots(con, [s for s in held if s < published])
    return published, len(files)
