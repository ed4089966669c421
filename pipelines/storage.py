"""The one module that opens the warehouse. Every read and write goes through ``Warehouse``.

The warehouse is a DuckLake: a SQL catalog (a SQLite file, ``warehouse/markhouse.sqlite``) and
plain parquet data files (``warehouse/markhouse.data/<schema>/<table>/<month partition>/``). Every
commit is a snapshot.

How concurrent work stays safe, in full:

- **One writing process at a time.** A writer holds an exclusive ``flock`` on
  ``<catalog>.lock`` for as long as it writes; ``markhouse backfill`` holds it for its whole run
  (loads, marts, publish), a run launched by Dagster's daemon or UI for each step. The kernel
  releases the lock when the process ends, however it ends, so a killed run never leaves a stale
  lock. A second run waits for it (``--wait``), saying every few seconds whom it waits for: the
  holder writes its name (run id, command, pid, host) into the lock file.
- **Inside that process, threads share one writer** (one DuckDB instance with the lake attached,
  a cursor each) and their write transactions take turns (``transaction``); their fetches run at
  once. Nothing else is needed: no Dagster pool, no slot to free.
- **Every write is one transaction**, one snapshot (delete the partitions' rows, insert the new
  ones, commit): a failure or a kill leaves the previous snapshot, never a mix.
- **What a killed run leaves** is found by the next writer when it takes the lock: parquet files
  never committed (removed), staging folders and partial serving copies named with a pid that no
  longer runs (removed), and its name still in the lock file (a clean release empties it), which
  the command reports and turns into a failed Dagster run (``pipelines.resources``).
- **Readers never wait**: they attach the latest *published* snapshot read-only (the SQLite
  catalog is in WAL mode), so they never see a half-finished run and never block a writer.
- **Several hosts** on one PostgreSQL catalog have no lock in common: a commit that meets another
  host's is rerun whole, a bounded number of times (``with_commit_retry``).
"""

from __future__ import annotations

import fcntl
import importlib.resources
import json
import logging
import os
import re
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import duckdb
import pyarrow as pa

from pipelines.settings import SQL_DIR
from pipelines.sources.source import CREATE_TABLE

log = logging.getLogger("markhouse.storage")

T = TypeVar("T")

LAKE = "lake"  # the catalog alias every connection attaches the warehouse under

# The read-only DuckDB file for old drivers is written in an older storage format on purpose: BI
# drivers in the field (JDBC, ODBC, duckdb-engine on an older duckdb) lag the newest DuckDB, and
# every DuckDB >= 1.0 reads v1.0.0.
SERVING_STORAGE_VERSION = "v1.0.0"

# DuckLake and its SQLite catalog come as PyPI wheels pinned to this duckdb (`INSTALL` needs the
# network); each holds the extension binary under extensions/v<duckdb version>/.
EXTENSIONS = (
    ("duckdb_extension_sqlite_scanner", "sqlite_scanner"),
    ("duckdb_extension_ducklake", "ducklake"),
)

COMMIT_ATTEMPTS = 6
RETRYABLE = ("database is locked", "conflict", "busy")

# Past one machine: ``MARKHOUSE_CATALOG`` names a PostgreSQL catalog (a URL or a libpq string) and
# ``MARKHOUSE_DATA_PATH`` a shared folder or an S3-compatible URL; unset, the embedded SQLite
# catalog and the data folder beside it. ``MARKHOUSE_WAREHOUSE`` stays this host's working file:
# the SQLite catalog itself, or with PostgreSQL the place of the host's writer lock and staging.
POSTGRES_PREFIXES = ("postgresql://", "postgres://")
REMOTE_DATA_PREFIXES = ("s3://", "s3a://", "r2://", "gcs://", "gs://")
# the S3 secret's settings, read from the environment only when the data path is a URL
S3_SETTINGS = (
    ("MARKHOUSE_S3_KEY_ID", "key_id"),
    ("MARKHOUSE_S3_SECRET", "secret"),
    ("MARKHOUSE_S3_REGION", "region"),
    ("MARKHOUSE_S3_ENDPOINT", "endpoint"),
    ("MARKHOUSE_S3_URL_STYLE", "url_style"),
    ("MARKHOUSE_S3_USE_SSL", "use_ssl"),
)
_PASSWORD = re.compile(
    r"(?P<head>postgres(?:ql)?://[^:/@\s]*:)[^@\s]*(?=@)|(?P<kv>password\s*=\s*)(?:'[^']*'|\S+)", re.I
)


def redact(text: str) -> str:
    """``text`` with any PostgreSQL password (URL or ``password=``) replaced, for messages and logs."""
    return _PASSWORD.sub(lambda m: (m["head"] or m["kv"]) + "***", text)


def is_postgres(catalog: str) -> bool:
    """A PostgreSQL connection URL or libpq ``key=value`` string (not a file path)."""
    return catalog.startswith(POSTGRES_PREFIXES) or bool(re.search(r"(^|\s)(dbname|host)\s*=", catalog))


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse for writing longer than we were willing to wait."""


class LegacyWarehouseError(RuntimeError):
    """The warehouse is (still) a single DuckDB file from the previous layout."""


class NothingPublishedError(RuntimeError):
    """No run has published a snapshot yet."""


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
    snapshot: int
    tables: dict[str, int]
    files: int
    seconds: float


@dataclass(frozen=True)
class ReplaceResult:
    rows: int
    partitions: int
    seconds: float


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: int
    snapshot_time: datetime
    published: bool


def extension_path(package: str, name: str) -> Path:
    """The extension binary inside its installed wheel."""
    path = Path(str(importlib.resources.files(package))) / "extensions" / f"v{duckdb.__version__}"
    path = path / f"{name}.duckdb_extension"
    if not path.exists():
        raise RuntimeError(
            f"{path} is missing: the {package} wheel must match duckdb {duckdb.__version__} (make install)"
        )
    return path


def is_duckdb_file(path: Path) -> bool:
    """A DuckDB database file (its header carries ``DUCK`` at byte 8), not a SQLite catalog."""
    try:
        with open(path, "rb") as f:
            return f.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


def _connect(
    memory_limit: str | None = None, path: str = ":memory:", **config: Any
) -> duckdb.DuckDBPyConnection:
    settings: dict[str, Any] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if memory_limit:
        # DuckDB's buffer pool defaults to 80% of RAM and keeps what it touched; work here is
        # bounded by a month, so a small pool costs no speed
        settings["memory_limit"] = memory_limit
    con = duckdb.connect(path, config={**settings, **config})
    _session(con)
    return con


def _session(con: duckdb.DuckDBPyConnection) -> None:
    """What every connection (and cursor: settings are per connection) needs."""
    # Naive parquet timestamps are UTC; without this DuckDB would read them in the host's zone.
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")  # a long statement would draw one on a script's stdout


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _retryable(exc: BaseException, also: Sequence[str] = ()) -> bool:
    return isinstance(exc, duckdb.Error) and any(s in str(exc).lower() for s in (*RETRYABLE, *also))


def with_commit_retry(
    work: Callable[[], T], what: str, attempts: int = COMMIT_ATTEMPTS, also: Sequence[str] = ()
) -> T:
    """Run ``work`` (one whole transaction) again when its commit met another writer's, with
    backoff; after ``attempts`` the last error propagates (nothing half-written: it rolled back).
    ``also``: further error texts that mean "another writer got there first"."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except duckdb.Error as exc:
            if not _retryable(exc, also) or attempt == attempts:
                raise
            delay = min(0.1 * 2**attempt, 5.0)
            log.warning(
                "%s: commit conflict (%s); retrying in %.1fs (%d/%d)",
                what,
                redact(str(exc)),
                delay,
                attempt,
                attempts,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


_WRITING = threading.RLock()
"""One transaction at a time in this process: its threads' writes take turns (their fetches do not)."""


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction (one snapshot): committed if the block returns, rolled back otherwise."""
    with _WRITING:
        con.execute("begin transaction")
        try:
            yield
            con.execute("commit")
        except BaseException:
            with suppress(duckdb.Error):  # a failed commit has already ended it
                con.execute("rollback")
            raise


WAIT_NOTICE_SECONDS = 5.0


@dataclass
class _Hold:
    """This process's hold on one warehouse: the locked file and the one writer instance."""

    con: duckdb.DuckDBPyConnection
    lock: IO[str]
    previous: dict[str, Any] | None  # the record a killed holder left in the lock file
    users: int = 0

    def release(self) -> None:
        try:
            self.con.close()
        finally:
            _release(self.lock)


_HOLDS: dict[Path, _Hold] = {}
_HOLDS_LOCK = threading.Lock()


def _holder_record(holder: str | None, run_id: str | None) -> dict[str, Any]:
    host, pid = socket.gethostname(), os.getpid()
    return {"holder": holder or f"pid {pid} on {host}", "run_id": run_id, "pid": pid, "host": host}


def _read_record(lock: IO[str]) -> dict[str, Any] | None:
    lock.seek(0)
    text = lock.read().strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _acquire(
    lock: IO[str], path: Path, wait_seconds: float, on_wait: Callable[[str], None] | None
) -> dict[str, Any] | None:
    """Take the exclusive lock; return the record a holder that died left behind (a clean
    release empties the file), or None."""
    started = time.monotonic()
    said: float | None = None
    while True:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return _read_record(lock)
        except BlockingIOError:
            waited = time.monotonic() - started
            record = _read_record(lock)
            who = record["holder"] if record else f"another process (lock {path})"
            if waited >= wait_seconds:
                raise WarehouseBusyError(
                    f"gave up after {waited:.0f}s: the warehouse is being written by {who}; "
                    "try again when it ends (or raise --wait)"
                ) from None
            if said is None or waited - said >= WAIT_NOTICE_SECONDS:
                (on_wait or log.info)(
                    f"markhouse: {datetime.now(UTC):%H:%M:%S} waiting for {who} to finish writing "
                    f"the warehouse ({waited:.0f}s)"
                )
                said = waited
            time.sleep(0.2)


def _release(lock: IO[str]) -> None:
    """Empty the record (a clean end), then unlock and close."""
    try:
        lock.seek(0)
        lock.truncate()
        lock.flush()
    finally:
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        lock.close()


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
    """The process's start time (clock ticks since boot, Linux /proc), or None where unknown: with
    the pid it names a process uniquely (a reused pid has another start)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, starttime


class Warehouse:
    """A DuckLake warehouse: one writer at a time, any number of snapshot readers."""

    def __init__(
        self,
        path: Path | str,
        memory_limit: str | None = None,
        catalog: str | None = None,
        data_path: str | None = None,
    ):
        self.path = Path(path)
        self.memory_limit = memory_limit or os.environ.get("MARKHOUSE_DUCKDB_MEMORY_LIMIT", "512MB")
        self.catalog = catalog if catalog is not None else os.environ.get("MARKHOUSE_CATALOG") or None
        if self.catalog is not None and not is_postgres(self.catalog):
            raise ValueError(
                f"MARKHOUSE_CATALOG must be a PostgreSQL URL (postgresql://...) or libpq string "
                f"(dbname=... host=...), got {redact(self.catalog)!r}; unset it for the embedded catalog"
            )
        self._data = data_path if data_path is not None else os.environ.get("MARKHOUSE_DATA_PATH") or None

    @property
    def shared_catalog(self) -> bool:
        """The catalog is a PostgreSQL server other hosts may write too (this host's lock does not
        hold them back)."""
        return self.catalog is not None

    @property
    def data_is_remote(self) -> bool:
        return self._data is not None and self._data.startswith(REMOTE_DATA_PREFIXES)

    @property
    def data_path(self) -> Path:
        """The local (or mounted shared) data folder; see ``data_location`` for an object-store URL."""
        if self.data_is_remote:
            raise RuntimeError(f"the data path is object storage ({self._data}), not a folder")
        if self._data is not None:
            return Path(self._data)
        return self.path.with_name(self.path.stem + ".data")

    @property
    def data_location(self) -> str:
        """Where the parquet files go, as DuckLake's DATA_PATH (a folder or a URL, ending in /)."""
        if self.data_is_remote:
            assert self._data is not None
            return self._data.rstrip("/") + "/"
        return str(self.data_path.resolve()) + os.sep

    def describe(self) -> str:
        """The catalog for messages: the file, or the PostgreSQL server with its password hidden."""
        return redact(self.catalog) if self.catalog is not None else str(self.path)

    def _catalog_exists(self) -> bool:
        # a PostgreSQL catalog is created by DuckLake on first attach, racing writers retry
        return self.catalog is not None or self.path.exists()

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @property
    def legacy_path(self) -> Path:
        """Where the previous layout kept the whole warehouse in one DuckDB file."""
        return self.path.with_suffix(".duckdb")

    def check_layout(self) -> None:
        """Refuse to start on a warehouse in the previous layout, saying what to run."""
        if self.catalog is not None:
            return
        if is_duckdb_file(self.path):
            raise LegacyWarehouseError(
                f"{self.path} is a DuckDB warehouse file from the previous layout; the warehouse is now a "
                f"DuckLake: point MARKHOUSE_WAREHOUSE at a new catalog (e.g. {self.path.with_suffix('.sqlite')}) "
                f"and import the old file once with `markhouse import-duckdb {self.path}`"
            )
        legacy = self.legacy_path
        if not self.path.exists() and legacy != self.path and is_duckdb_file(legacy):
            raise LegacyWarehouseError(
                f"found a warehouse in the previous layout at {legacy} and no DuckLake at {self.path}; "
                f"import it once with `markhouse import-duckdb {legacy}` (or move it aside to start empty)"
            )

    def _attach(
        self, con: duckdb.DuckDBPyConnection, *, read_only: bool, snapshot: int | None = None
    ) -> None:
        options = []
        if read_only:
            options.append("read_only")
            if snapshot is not None:
                options.append(f"snapshot_version {int(snapshot)}")
        else:
            # data inlining would keep small inserts in the catalog, where plain-parquet readers
            # (the serving file's views) cannot see them
            options += [
                f"data_path {_quote(self.data_location)}",
                "data_inlining_row_limit 0",
            ]
        extensions = [*EXTENSIONS]
        if self.catalog is not None:
            extensions.append(("duckdb_extension_postgres_scanner", "postgres_scanner"))
        if self.data_is_remote:
            extensions.append(("duckdb_extension_httpfs", "httpfs"))
        for package, name in extensions:
            con.execute(f"load {_quote(str(extension_path(package, name)))}")
        if self.data_is_remote:
            _create_s3_secret(con)
        source = (
            f"ducklake:postgres:{self.catalog}"
            if self.catalog is not None
            else f"ducklake:sqlite:{self.path}"
        )

        def attach() -> None:
            con.execute(f"attach {_quote(source)} as {LAKE} ({', '.join(options)})")

        try:  # two hosts creating a new PostgreSQL catalog at once: the loser retries
            with_commit_retry(attach, "attach", also=("already exists", "duplicate key"))
        except duckdb.Error as exc:
            raise RuntimeError(f"cannot open the warehouse {self.describe()}: {redact(str(exc))}") from None
        con.execute(f"use {LAKE}")

    @contextmanager
    def writer(
        self,
        wait_seconds: float = 3600.0,
        importing: bool = False,
        holder: str | None = None,
        run_id: str | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection (a cursor of this process's one writer instance), with the
        warehouse schema in place. The first writer of the process takes the warehouse lock
        (waiting up to ``wait_seconds``, telling ``on_wait`` whom it waits for every few seconds)
        and names itself (``holder``, ``run_id``) in the lock file; the others, in any thread, share it. See the
        module docstring for the whole story."""
        if not importing:
            self.check_layout()
        key = self._hold_key
        with _HOLDS_LOCK:
            hold = _HOLDS.get(key)
            if hold is None:
                hold = _HOLDS[key] = self._hold(wait_seconds, _holder_record(holder, run_id), on_wait)
            hold.users += 1
        try:
            cursor = hold.con.cursor()
            try:
                _session(cursor)
                cursor.execute(f"use {LAKE}")
                yield cursor
            except duckdb.Error as exc:
                _raise_naming_corruption(self.path, exc)
            finally:
                cursor.close()
        finally:
            with _HOLDS_LOCK:
                hold.users -= 1
                if hold.users == 0:
                    del _HOLDS[key]
                    hold.release()

    @property
    def _hold_key(self) -> Path:
        return self.lock_path.resolve() if self.catalog is None else Path(self.describe())

    def _hold(
        self, wait_seconds: float, record: dict[str, Any], on_wait: Callable[[str], None] | None
    ) -> _Hold:
        """Take the warehouse lock for this process, then open its writer instance."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(self.lock_path, "a+")  # noqa: SIM115 (held until the hold is released)
        try:
            previous = _acquire(lock, self.path, wait_seconds, on_wait)
            lock.seek(0)
            lock.truncate()
            lock.write(json.dumps(record))
            lock.flush()
            remove_stale_temporaries(self.path.parent)
            new = self.catalog is None and not self.path.exists()
            if new:
                _create_wal_catalog(self.path)
            con = _connect(self.memory_limit)
            try:
                self._attach(con, read_only=False)
                with_commit_retry(lambda: _ensure_schema(con), "schema")
                if not self.data_is_remote:
                    self.data_path.mkdir(parents=True, exist_ok=True)
                # a killed writer's files in flight; on a shared catalog, another host's are
                # invisible to this lock (maintenance removes old ones)
                if not new and not self.shared_catalog:
                    self.remove_orphaned_files(con)
            except BaseException:
                con.close()
                raise
        except duckdb.Error as exc:
            _release(lock)
            _raise_naming_corruption(self.path, exc)
        except BaseException:
            _release(lock)
            raise
        return _Hold(con, lock, previous)

    def killed_holder(self) -> dict[str, Any] | None:
        """The record a killed writer left in the lock file, once (to the first who asks): this
        process found it when it took the lock, so that holder is gone."""
        hold = _HOLDS.get(self._hold_key)
        if hold is None:
            return None
        previous, hold.previous = hold.previous, None
        return previous

    @contextmanager
    def reader(self, snapshot: int | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """Read-only connection at the latest published snapshot (or at ``snapshot``: time travel).
        Never blocks a writer, and a writer's later commits do not change what it reads."""
        self.check_layout()
        if not self._catalog_exists():
            raise NothingPublishedError(f"no warehouse at {self.path} yet; run a backfill first")
        con = _connect(self.memory_limit)
        try:
            if snapshot is None:
                self._attach(con, read_only=True)
                snapshot = latest_published(con)
                con.execute("use memory")
                con.execute(f"detach {LAKE}")
            self._attach(con, read_only=True, snapshot=snapshot)
            yield con
        except duckdb.Error as exc:
            _raise_naming_corruption(self.path, exc)
        finally:
            con.close()

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot still held, oldest first, and whether a run published it."""
        con = _connect(self.memory_limit)
        try:
            self._attach(con, read_only=True)
            published = set(_published_ids(con))
            rows = con.execute(
                f"select snapshot_id, snapshot_time from {LAKE}.snapshots() order by 1"
            ).fetchall()
            return [Snapshot(int(i), t, int(i) in published) for i, t in rows]
        finally:
            con.close()

    def remove_orphaned_files(self, con: duckdb.DuckDBPyConnection) -> list[Path]:
        """Parquet files a killed writer wrote but never committed, removed by the next exclusive
        writer (with the lock, nothing else is writing any)."""
        orphans = con.execute(
            f"call ducklake_delete_orphaned_files({_quote(LAKE)}, cleanup_all => true)"
        ).fetchall()
        if orphans:
            log.info("removed %d parquet files a killed run left in %s", len(orphans), self.data_path)
        return [Path(str(r[0])) for r in orphans]

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
        row of ``partitions``, then run ``insert_sql``; all in one transaction (one snapshot), so
        on any error, or a kill, none of it is visible. The result counts the rows inserted into
        the first table. A commit conflict with another writer reruns the whole transaction.

        ``partitions`` is visible to the SQL as ``replace_partitions``; tables in ``registered``
        under their names. With ``expected_rows`` (the rows the caller validated), a first insert
        that wrote any other number rolls everything back: a join that dropped or doubled rows.
        """
        started = time.perf_counter()
        views = {"replace_partitions": partitions, **(registered or {})}
        for name, tbl in views.items():
            con.register(name, tbl)

        def replace() -> int:
            rows = 0
            with transaction(con):
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
            return rows

        try:
            rows = with_commit_retry(replace, f"replace {targets[0].table}")
        finally:
            for name in views:
                con.unregister(name)
        return ReplaceResult(rows, partitions.num_rows, time.perf_counter() - started)


def _create_s3_secret(con: duckdb.DuckDBPyConnection) -> None:
    """The S3-compatible store's credentials, from the environment only (never logged or echoed:
    DuckDB's errors name the secret, not its values)."""
    given = {key: os.environ[var] for var, key in S3_SETTINGS if os.environ.get(var)}
    if "key_id" not in given or "secret" not in given:
        raise RuntimeError(
            "MARKHOUSE_DATA_PATH is object storage: set MARKHOUSE_S3_KEY_ID and MARKHOUSE_S3_SECRET "
            "(and MARKHOUSE_S3_ENDPOINT, MARKHOUSE_S3_REGION for a non-AWS store)"
        )
    settings = ", ".join(
        f"{key} {given[key]}"
        if key == "use_ssl" and given[key] in ("true", "false")
        else f"{key} {_quote(given[key])}"
        for key in given
    )
    con.execute(f"create or replace temporary secret markhouse_data (type s3, {settings})")


def _create_wal_catalog(path: Path) -> None:
    """An empty SQLite catalog in WAL mode (persistent in the file): readers and the writer then
    never wait for each other's transactions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    try:
        db.execute("pragma journal_mode = wal")
    finally:
        db.close()


def schema_sql() -> str:
    """The internal layers' DDL: ``sql/schema/raw.sql`` (schemas, reference tables, load log), then
    each source's raw tables (``sql/sources/<vendor>/raw.sql``, as its ``SOURCE`` declares them)."""
    from pipelines import sources  # the registry is light; imported here, not at storage's import

    return "\n".join([read_sql("schema/raw"), *(s.raw_ddl() for s in sources.sources())])


def partitioned_by_month() -> tuple[str, ...]:
    """Every raw table (each source's and ``raw.load_log``): each is partitioned by its month
    column, so replacing an instrument-month rewrites only that month's files. Read from the DDL,
    so a new source's tables are included without a list to keep."""
    return tuple(t for t in CREATE_TABLE.findall(schema_sql()) if t.startswith("raw."))


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the internal layers once (and what a newer version adds): one snapshot, not one per
    writer connection."""
    have = {
        f"{s}.{t}"
        for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database()"
        ).fetchall()
    }
    ddl = schema_sql()
    wanted = set(CREATE_TABLE.findall(ddl))
    if wanted <= have:
        return
    with transaction(con):
        con.execute(ddl)
        for table in partitioned_by_month():
            if table not in have:
                con.execute(f"alter table {table} set partitioned by (month)")


def read_sql(name: str) -> str:
    """Text of ``sql/<name>.sql``."""
    return (SQL_DIR / f"{name}.sql").read_text()


def _used(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The named parameters ``sql`` refers to (DuckDB rejects unused ones)."""
    return {k: v for k, v in (params or {}).items() if re.search(rf"\${k}\b", sql)}


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute(f"select id from {LAKE}.current_snapshot()").fetchone()
    return int(row[0]) if row else 0


def _published_ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [
        int(r[0])
        for r in con.execute(f"select snapshot_id from {LAKE}.meta.publication order by 1").fetchall()
    ]


def latest_published(con: duckdb.DuckDBPyConnection) -> int:
    """The snapshot the last finished run published (what readers read)."""
    published = _published_ids(con)
    if not published:
        raise NothingPublishedError("nothing published yet: run a backfill first")
    return published[-1]


@contextmanager
def open_serving(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only connection to the serving file (what status, summary and checks read, as a BI
    tool would)."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        _raise_naming_corruption(Path(path), exc)
    try:
        con.execute("set TimeZone = 'UTC'")
        yield con
    except duckdb.Error as exc:
        _raise_naming_corruption(Path(path), exc)
    finally:
        con.close()


def _relations(
    con: duckdb.DuckDBPyConnection,
) -> tuple[list[tuple[str, str, str | None]], list[tuple[str, str, str, str | None]]]:
    """The lake's tables (schema, name, comment) and views (schema, name, sql, comment)."""
    tables = con.execute(
        "select schema_name, table_name, comment from duckdb_tables() "
        "where database_name = current_database() and schema_name <> 'meta' order by all"
    ).fetchall()
    views = con.execute(
        "select schema_name, view_name, sql, comment from duckdb_views() "
        "where database_name = current_database() and not internal order by schema_name, view_oid"
    ).fetchall()
    return tables, views


_VIEW_HEAD = re.compile(r"^\s*create\s+(?:or\s+replace\s+)?view\s+(?:\"[^\"]+\"|[\w.]+)\s+as\s+", re.I | re.S)


def in_dependency_order(views: Sequence[tuple[str, str, str, Any]]) -> list[tuple[str, str, str, Any]]:
    """(schema, name, sql, ...) rows ordered so that each view comes after the views its SQL names."""
    pending, done, ordered = list(views), set(), []
    while pending:
        ready = [
            v
            for v in pending
            if not any(
                f"{s}.{n}".lower() in v[2].lower() and (s, n) not in done and (s, n) != (v[0], v[1])
                for s, n, *_ in pending
            )
        ]
        if not ready:
            raise RuntimeError(f"views that read each other: {', '.join(f'{v[0]}.{v[1]}' for v in pending)}")
        ordered += ready
        done |= {(v[0], v[1]) for v in ready}
        pending = [v for v in pending if (v[0], v[1]) not in done]
    return ordered


def view_body(sql: str) -> str:
    """The SELECT of a ``CREATE VIEW name AS SELECT ...`` statement (as duckdb_views() gives it)."""
    return _VIEW_HEAD.sub("", sql, count=1).rstrip().rstrip(";")


def _files_at(
    con: duckdb.DuckDBPyConnection, tables: Sequence[tuple[str, str]], snapshot: int
) -> dict[tuple[str, str], list[tuple[str, str | None]]]:
    """Each table's (data file, delete file) pairs at ``snapshot``, in one statement: one
    ``ducklake_list_files`` call per table costs a catalog round trip each (6 ms apiece here)."""
    listed: dict[tuple[str, str], list[tuple[str, str | None]]] = {t: [] for t in tables}
    if not tables:
        return listed
    union = " union all ".join(
        f"select {i} as t, data_file, delete_file from ducklake_list_files({_quote(LAKE)}, {_quote(table)}, "
        f"schema => {_quote(schema)}, snapshot_version => {int(snapshot)})"
        for i, (schema, table) in enumerate(tables)
    )
    for i, data, delete in con.execute(f"{union} order by t, data_file").fetchall():
        listed[tables[i]].append((data, delete))
    return listed


def _table_view_sql(
    columns: Sequence[tuple[str, str]], files: Sequence[tuple[str, str | None]]
) -> tuple[str, int]:
    """A plain-DuckDB SELECT over a table's parquet files (rows a delete file removed are left
    out), and the number of files it names.

    Only the files that have a delete file go through the anti join: it needs every row's file
    name and position, so over all files it made one delete file cost a whole-table scan in every
    query (the selective README query on 48 months: 28 ms without a delete file, 158 ms with one).
    """
    names = ", ".join(f'f."{c}"' for c, _ in columns)
    if not files:
        typed = ", ".join(f'null::{t} as "{c}"' for c, t in columns)
        return f"select {typed} where false", 0

    def listed(paths: Sequence[str]) -> str:
        return "[" + ", ".join(_quote(p) for p in paths) + "]"

    clean = [d for d, x in files if not x]
    deleted = [(d, x) for d, x in files if x]
    branches = []
    if clean:
        branches.append(f"select {names} from read_parquet({listed(clean)}, hive_partitioning = false) f")
    if deleted:
        branches.append(
            f"select {names} from read_parquet({listed([d for d, _ in deleted])}, hive_partitioning = false, "
            f"filename = true, file_row_number = true) f anti join read_parquet({listed([x for _, x in deleted])}) d "
            "on f.filename = d.file_path and f.file_row_number = d.pos"
        )
    return " union all ".join(branches), len(files) + len(deleted)


@dataclass(frozen=True)
class _Published:
    """What publishing reads of the lake at one snapshot, in one transaction."""

    snapshot: int
    tables: list[tuple[str, str, str | None]]
    views: list[tuple[str, str, str, str | None]]
    columns: dict[tuple[str, str], list[tuple[str, str]]]
    files: dict[tuple[str, str], list[tuple[str, str | None]]]
    counts: dict[str, int]


def _read_published(con: duckdb.DuckDBPyConnection) -> _Published:
    """The current snapshot's relations, columns, files and mart row counts, read in one
    transaction: DuckLake reads its catalog once per transaction, and per-statement transactions
    made these lookups most of publishing's time."""
    with transaction(con):
        snapshot = current_snapshot(con)
        tables, views = _relations(con)
        columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, column, data_type in con.execute(
            "select schema_name, table_name, column_name, data_type from duckdb_columns() "
            "where database_name = current_database() order by schema_name, table_name, column_index"
        ).fetchall():
            columns.setdefault((schema, table), []).append((column, data_type))
        # the materialized marts (views are computed when read, so counting them would cost a scan)
        marts = [t for s, t, _ in tables if s == "marts"]
        counts: dict[str, int] = {}
        if marts:  # one statement for all of them
            union = " union all ".join(
                f"select {_quote(f'marts.{n}')}, count(*) from marts.{n}" for n in marts
            )
            counts = {name: int(n) for name, n in con.execute(union).fetchall()}
        files = _files_at(con, [(s, t) for s, t, _ in tables], snapshot)
    return _Published(snapshot, tables, views, columns, files, counts)


def write_serving_file(serving_path: Path, published: _Published) -> int:
    """The read-only DuckDB file for drivers that cannot load DuckLake: views over the published
    snapshot's parquet files (its size and cost grow with the number of files, not bytes), the
    lake's views and comments, and ``meta.publication``; swapped in with one atomic rename.
    Returns the files it names.

    The file is written as one script in one transaction: publishing runs on every refresh, and
    per-statement round trips were most of its time."""
    from pipelines.models import comment_statements, mart_docs

    serving_path = Path(serving_path)
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(serving_path.parent)  # the serving file may live in another folder
    tmp = serving_path.with_name(f".{serving_path.name}.{os.getpid()}.tmp")
    tables, views = published.tables, published.views
    files = 0
    script = [
        f"create schema if not exists {schema}"
        for schema in sorted({s for s, *_ in tables} | {s for s, *_ in views} | {"meta"})
    ]
    for schema, table, comment in tables:
        sql, n = _table_view_sql(published.columns[(schema, table)], published.files[(schema, table)])
        files += n
        script.append(f"create view {schema}.{table} as {sql}")
        if comment:
            script.append(f"comment on view {schema}.{table} is {_quote(comment)}")
    for schema, name, sql, comment in in_dependency_order(views):
        script.append(f"create view {schema}.{name} as {view_body(sql)}")
        if comment:
            script.append(f"comment on view {schema}.{name} is {_quote(comment)}")
    # every relation is a view here, and DuckDB keeps comments on view columns (DuckLake does not)
    names = [(t[0], t[1]) for t in tables] + [(v[0], v[1]) for v in views]
    marts = {name: "view" for schema, name in names if schema == "marts"}
    script += comment_statements(mart_docs(), marts)
    try:
        out = duckdb.connect(str(tmp), config={"storage_compatibility_version": SERVING_STORAGE_VERSION})
        try:
            out.execute("begin transaction")  # one commit, not one per statement
            out.execute(";\n".join(script))
            out.execute(
                "create table meta.publication as select $s::bigint as snapshot_id, now() as published_at, "
                "$t::json as row_counts",
                {"s": published.snapshot, "t": json.dumps(dict(sorted(published.counts.items())))},
            )
            out.execute("commit")
        finally:
            out.close()
        os.replace(tmp, serving_path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
    dir_fd = os.open(serving_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return files


def publish_serving(con: duckdb.DuckDBPyConnection, serving_path: Path) -> PublishResult:
    """Publish the current snapshot: record it in ``meta.publication`` (readers attach it; no data
    is copied), then rewrite the serving file of views over its parquet files.

    A reader sees the previous published snapshot or this one, never a half-finished run, and
    nothing a reader does can block the writer. The caller holds the writer lock, so the current
    snapshot is this run's last commit.
    """
    started = time.perf_counter()
    published = _read_published(con)

    def record() -> None:
        con.execute(
            "insert into meta.publication values ($s, now(), $t)",
            {"s": published.snapshot, "t": json.dumps(dict(sorted(published.counts.items())))},
        )

    with_commit_retry(record, "publish")
    files = write_serving_file(serving_path, published)
    return PublishResult(
        Path(serving_path), published.snapshot, published.counts, files, time.perf_counter() - started
    )


@dataclass(frozen=True)
class MaintenanceResult:
    merged: bool
    expired: int
    deleted_files: int
    bytes_before: int
    bytes_after: int
    republished: PublishResult | None
    seconds: float


def data_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def maintain(
    warehouse: Warehouse, serving_path: Path, retention: timedelta = timedelta(days=7)
) -> MaintenanceResult:
    """Merge small files and rewrite files with many deletes (only when nothing was committed
    since the last publish, so the merged files hold exactly the published rows; the serving file
    is then republished over them), expire snapshots older than ``retention`` except the latest
    published one, and delete files no remaining snapshot references, once they are older than
    ``retention`` (a reader may still be scanning them)."""
    started = time.perf_counter()
    with warehouse.writer() as con:
        before = 0 if warehouse.data_is_remote else data_bytes(warehouse.data_path)
        published = _published_ids(con)
        last = published[-1] if published else None
        # the publication record itself is the one commit after the published snapshot
        merged = False
        republished = None
        if last is not None and current_snapshot(con) == last + 1:
            merged = True
            con.execute(f"call ducklake_merge_adjacent_files({_quote(LAKE)})")
            con.execute(f"call ducklake_rewrite_data_files({_quote(LAKE)})")
            if current_snapshot(con) != last + 1:
                republished = publish_serving(con, serving_path)
                last = republished.snapshot
        cutoff = datetime.now().astimezone() - retention
        keep = {current_snapshot(con), *([last] if last is not None else [])}
        old = [
            int(i)
            for (i,) in con.execute(
                f"select snapshot_id from {LAKE}.snapshots() where snapshot_time < $c", {"c": cutoff}
            ).fetchall()
            if int(i) not in keep
        ]
        if old:
            con.execute(
                f"call ducklake_expire_snapshots({_quote(LAKE)}, versions => [{', '.join(map(str, old))}])"
            )
            # a publication record of an expired snapshot would point readers at nothing
            con.execute(f"delete from meta.publication where snapshot_id in ({', '.join(map(str, old))})")
        deleted = con.execute(
            f"call ducklake_cleanup_old_files({_quote(LAKE)}, older_than => $c)",
            {"c": cutoff + timedelta(seconds=1)},
        ).fetchall()
        orphans = con.execute(
            f"call ducklake_delete_orphaned_files({_quote(LAKE)}, older_than => $c)", {"c": cutoff}
        ).fetchall()
        after = 0 if warehouse.data_is_remote else data_bytes(warehouse.data_path)
    return MaintenanceResult(
        merged,
        len(old),
        len(deleted) + len(orphans),
        before,
        after,
        republished,
        time.perf_counter() - started,
    )


def imported_tables() -> tuple[str, ...]:
    """What an import of the previous layout copies: the loaded rows and the reference data (the
    marts are rebuilt from them by the current SQL)."""
    return (*partitioned_by_month(), "ref.instrument", "ref.vendor_instrument")


def import_legacy(warehouse: Warehouse, legacy: Path) -> dict[str, int]:
    """Copy the raw and reference tables of a previous-layout DuckDB warehouse file into an empty
    DuckLake, in one transaction (all or nothing), then rename the old file to ``*.imported`` so
    it is not imported twice. Returns the rows copied per table."""
    legacy = Path(legacy)
    if not is_duckdb_file(legacy):
        raise LegacyWarehouseError(f"{legacy} is not a DuckDB warehouse file")
    if is_duckdb_file(warehouse.path):
        raise LegacyWarehouseError(
            f"MARKHOUSE_WAREHOUSE ({warehouse.path}) is itself the old DuckDB file; point it at the new "
            f"catalog (e.g. {warehouse.path.with_suffix('.sqlite')}) and import from {warehouse.path}"
        )
    copied: dict[str, int] = {}
    imported = imported_tables()
    with warehouse.writer(importing=True) as con:
        for table in imported:
            row = con.execute(f"select count(*) from {table}").fetchone()
            if row and row[0]:
                raise LegacyWarehouseError(
                    f"{warehouse.path} already holds rows ({table}); import {legacy} only into an empty warehouse"
                )
        try:
            con.execute(f"attach {_quote(str(legacy))} as legacy (read_only)")
        except duckdb.Error as exc:
            raise LegacyWarehouseError(f"cannot open {legacy} (is a run still writing it?): {exc}") from exc
        present = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = 'legacy'"
            ).fetchall()
        }
        try:
            with transaction(con):
                for table in imported:
                    if table not in present:
                        continue
                    order = (
                        " order by month, ts" if table.startswith("raw.") and table != "raw.load_log" else ""
                    )
                    result = con.execute(
                        f"insert into {table} by name select * from legacy.{table}{order}"
                    ).fetchone()
                    copied[table] = int(result[0]) if result else 0
        finally:
            con.execute("detach legacy")
    legacy.rename(legacy.with_name(legacy.name + ".imported"))
    return copied


def loaded_months(con: duckdb.DuckDBPyConnection) -> list[Any]:
    """Every month any raw table holds (what a full marts rebuild covers)."""
    union = " union ".join(
        f"select distinct month from {t}" for t in partitioned_by_month() if t != "raw.load_log"
    )
    return [m for (m,) in con.execute(f"{union} order by 1").fetchall()]
