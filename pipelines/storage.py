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
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import duckdb
import pyarrow as pa

from pipelines.processes import process_exists
from pipelines.settings import SQL_DIR

log = logging.getLogger("markhouse.storage")


def read_sql(name: str) -> str:
    """Text of ``sql/<name>.sql``."""
    return (SQL_DIR / f"{name}.sql").read_text()


# The warehouse, and so its serving copy, is written in an older storage format on purpose: BI
# drivers in the field (JDBC, ODBC, duckdb-engine on an older duckdb) lag the newest DuckDB, and
# every DuckDB >= 1.0 reads v1.0.0.
SERVING_STORAGE_VERSION = "v1.0.0"


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse for writing longer than we were willing to wait."""


class WarehouseCorruptError(RuntimeError):
    """A warehouse file's blocks fail their checksums; the message names the file and the way out."""


def _raise_naming_corruption(path: Path, exc: duckdb.Error) -> NoReturn:
    """Re-raise ``exc``, as a WarehouseCorruptError naming ``path`` if it is a damaged block."""
    damaged = _named_corruption(path, exc)
    if damaged is None:
        raise exc
    raise damaged from None


def _named_corruption(path: Path, exc: duckdb.Error) -> WarehouseCorruptError | None:
    """DuckDB's checksum error names a block offset, not the file: say which file, and what to do."""
    if "Corrupt database file" not in str(exc):
        return None
    return WarehouseCorruptError(
        f"{path} is damaged ({exc}); move it aside and run `markhouse backfill` over the months you "
        "need: the vendors are the source of every row"
    )


_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp(?:\.wal)?$")
_STAGING = re.compile(r"^[a-z]+-(?P<pid>\d+)-")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove what killed runs left in ``folder``: partial serving copies (``.<name>.<pid>.tmp``)
    and staging folders (``.staging/<vendor>-<pid>-*``) whose process no longer exists.

    A killed run cannot clean up after itself, and a partial copy is as big as the warehouse; the
    pid in each name tells a dead run's leftovers from a live run's work in progress.
    """
    removed: list[Path] = []
    candidates = [(p, _TEMPORARY.match(p.name)) for p in folder.glob(".*.tmp*")]
    staging = folder / ".staging"
    if staging.is_dir():
        candidates += [(p, _STAGING.match(p.name)) for p in staging.iterdir()]
    for path, match in candidates:
        if match is None or process_exists(int(match["pid"])):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
        log.info("removed %s, left by a run that no longer exists (pid %s)", path, match["pid"])
    return removed


@dataclass(frozen=True)
class Target:
    """A table to replace partitions of: rows matching ``keys`` (default: every partition column)
    are deleted, then ``insert_sql`` runs."""

    table: str
    insert_sql: str
    keys: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PublishResult:
    path: Path
    tables: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class ReplaceResult:
    rows: int
    partitions: int
    seconds: float


class Warehouse:
    """A DuckDB warehouse file: one writer at a time, readers open read-only."""

    def __init__(self, path: Path | str, memory_limit: str | None = None):
        self.path = Path(path)
        self.memory_limit = memory_limit or os.environ.get("MARKHOUSE_DUCKDB_MEMORY_LIMIT", "512MB")

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
                remove_stale_temporaries(self.path.parent)
                con = self._connect_when_free(deadline)
                try:
                    self._configure(con)
                    con.execute(read_sql("schema/raw"))
                    yield con
                except duckdb.Error as exc:
                    _raise_naming_corruption(self.path, exc)
                finally:
                    con.close()
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _connect_when_free(self, deadline: float) -> duckdb.DuckDBPyConnection:
        """Open read-write, waiting while another process (a notebook, a BI tool) has the file open."""
        announced = False
        while True:
            try:
                return duckdb.connect(
                    str(self.path),
                    config={
                        "storage_compatibility_version": SERVING_STORAGE_VERSION,
                        # DuckDB's buffer pool defaults to 80% of RAM and keeps what it touched;
                        # work here is bounded by a month, so a small pool costs no speed
                        "memory_limit": self.memory_limit,
                    },
                )
            except duckdb.IOException as exc:
                damaged = _named_corruption(self.path, exc)
                if damaged is not None:
                    raise damaged from None
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
        except duckdb.Error as exc:
            _raise_naming_corruption(self.path, exc)
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
        expected_rows: int | None = None,
    ) -> ReplaceResult:
        """For each target, delete the rows whose key columns match a
        row of ``partitions``, then run ``insert_sql``; all in one transaction, so on any error, or a
        kill, none of it is visible. The result counts the rows inserted into the first table.

        ``partitions`` is visible to the SQL as ``replace_partitions``; tables in ``registered``
        under their names. With ``expected_rows`` (the rows the caller validated), a first insert
        that wrote any other number rolls everything back: a join that dropped or doubled rows.
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
                        if expected_rows is not None and rows != expected_rows:
                            raise RuntimeError(
                                f"{target.table}: inserted {rows} rows but validated {expected_rows}; "
                                "nothing written"
                            )
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


def publish_serving(con: duckdb.DuckDBPyConnection, serving_path: Path) -> PublishResult:
    """Publish the warehouse as the readers' serving copy: checkpoint, copy the file byte for byte
    (about 1 GB/s, where copying the marts table by table ran near 1 M rows/s), stamp
    ``meta.publication`` on the copy, then swap it in with one atomic rename.

    A reader sees the old copy or the new one, never a half-written one, and nothing a reader does
    can block the writer: readers never open the warehouse, and a reader holding the old copy keeps
    reading its (unlinked) file. The caller holds the writer lock, so nothing changes the file
    while it is copied.
    """
    started = time.perf_counter()
    serving_path = Path(serving_path)
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    row = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    if not row or not row[0]:
        raise RuntimeError("publish_serving needs a file-backed warehouse connection")
    source = Path(row[0])
    # the materialized marts (views are computed when read, so counting them would cost a scan)
    counts: dict[str, int] = {}
    for (name,) in con.execute(
        "select table_name from duckdb_tables() where database_name = current_database() and schema_name = 'marts' "
        "order by 1"
    ).fetchall():
        result = con.execute(f"select count(*) from marts.{name}").fetchone()
        counts[f"marts.{name}"] = int(result[0]) if result else 0
    con.execute("checkpoint")
    remove_stale_temporaries(serving_path.parent)  # the serving copy may live in another folder
    tmp = serving_path.with_name(f".{serving_path.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        stamp = duckdb.connect(str(tmp))
        try:
            stamp.execute("create schema if not exists meta")
            stamp.execute(
                "create or replace table meta.publication as select now() as published_at, $t::json as row_counts",
                {"t": json.dumps(dict(sorted(counts.items())))},
            )
        finally:
            stamp.close()
        os.replace(tmp, serving_path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
    dir_fd = os.open(serving_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return PublishResult(serving_path, counts, time.perf_counter() - started)
