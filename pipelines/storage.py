"""The one module that opens the warehouse. Every read and write goes through ``Warehouse``.

Why it exists: DuckDB lets one process hold a file read-write and nobody else open it, so writers
queue on an OS file lock here (released by the kernel when a process dies, so a killed run never
leaves a stale lock), and every partition replace happens in one transaction (delete the
partitions' rows, insert the new ones, commit), so a failure or a kill leaves the old rows or
the new ones, never a mix. Keeping this surface small is what lets the warehouse move to DuckLake
later without touching the sources.
"""

from __future__ import annotations

import fcntl
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.settings import SQL_DIR

log = logging.getLogger("markhouse.storage")


def read_sql(name: str) -> str:
    """Text of ``sql/<name>.sql``."""
    return (SQL_DIR / f"{name}.sql").read_text()


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse for writing longer than we were willing to wait."""


@dataclass(frozen=True)
class Target:
    """A table to replace partitions of: rows matching ``keys`` (default: every partition column)
    are deleted, then ``insert_sql`` runs."""

    table: str
    insert_sql: str
    keys: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ReplaceResult:
    rows: int
    partitions: int
    seconds: float


class Warehouse:
    """A DuckDB warehouse file: one writer at a time, readers open read-only."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _configure(self, con: duckdb.DuckDBPyConnection) -> None:
        # Naive parquet timestamps are UTC; without this DuckDB would read them in the host's zone.
        con.execute("set TimeZone = 'UTC'")

    @contextmanager
    def writer(self, wait_seconds: float = 3600.0) -> Iterator[duckdb.DuckDBPyConnection]:
        """Exclusive read-write connection, with the warehouse schema in place."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            deadline = time.monotonic() + wait_seconds
            announced = False
            while True:
                try:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise WarehouseBusyError(
                            f"{self.path} is being written by another run; gave up after {wait_seconds:.0f}s"
                        ) from None
                    if not announced:
                        log.info("waiting for another run to finish writing %s", self.path)
                        announced = True
                    time.sleep(0.2)
            try:
                con = self._connect_when_free(deadline)
                try:
                    self._configure(con)
                    con.execute("set preserve_insertion_order = false")
                    con.execute(read_sql("schema/raw"))
                    yield con
                finally:
                    con.close()
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _connect_when_free(self, deadline: float) -> duckdb.DuckDBPyConnection:
        """Open read-write, waiting while another process (a notebook, a BI tool) has the file open."""
        announced = False
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise WarehouseBusyError(f"cannot open {self.path} for writing: {exc}") from None
                if not announced:
                    log.warning("%s is open in another process; waiting for it to close: %s", self.path, exc)
                    announced = True
                time.sleep(0.5)

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Read-only connection (fails if a writer holds the file: readers use the serving copy)."""
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            self._configure(con)
            yield con
        finally:
            con.close()

    @staticmethod
    def replace_partitions(
        con: duckdb.DuckDBPyConnection,
        *,
        partitions: pa.Table,
        targets: Sequence[Target],
        params: Mapping[str, Any] | None = None,
        registered: Mapping[str, pa.Table] | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> ReplaceResult:
        """For each target, delete the rows whose key columns match a
        row of ``partitions``, then run ``insert_sql``; all in one transaction, so on any error, or a
        kill, none of it is visible. The result counts the rows inserted into the first table.

        ``partitions`` is visible to the SQL as ``replace_partitions``; tables in ``registered``
        under their names.
        """
        started = time.perf_counter()
        views = {"replace_partitions": partitions, **(registered or {})}
        for name, tbl in views.items():
            con.register(name, tbl)
        rows = 0
        try:
            con.execute("begin transaction")
            try:
                for i, target in enumerate(targets):
                    keys = target.keys or tuple(partitions.column_names)
                    match = " and ".join(f"t.{k} = p.{k}" for k in keys)
                    con.execute(f"delete from {target.table} t using replace_partitions p where {match}")
                    result = con.execute(target.insert_sql, _used(target.insert_sql, params)).fetchone()
                    if i == 0:
                        rows = int(result[0]) if result else 0
                if before_commit is not None:
                    before_commit()
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
        finally:
            for name in views:
                con.unregister(name)
        return ReplaceResult(rows, partitions.num_rows, time.perf_counter() - started)


def _used(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The named parameters ``sql`` refers to (DuckDB rejects unused ones)."""
    return {k: v for k, v in (params or {}).items() if re.search(rf"\${k}\b", sql)}
