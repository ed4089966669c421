"""The lake: ``Warehouse`` opens the DuckLake (a SQLite or PostgreSQL catalog, parquet in a folder or
an S3-compatible store) to read a published snapshot or to write, and replaces partitions atomically."""

from __future__ import annotations

import importlib.resources
import logging
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Any, NamedTuple, Unpack

import duckdb
import pyarrow as pa

from pipelines.redaction import redact
from pipelines.settings import SQL_DIR, unguarded
from pipelines.warehouse.concurrency import Con, Holder, shared_writer, transaction, with_commit_retry

log = logging.getLogger("markhouse.warehouse")

LAKE = "lake"  # the catalog alias every connection attaches the warehouse under
# Past one machine, ``MARKHOUSE_CATALOG`` names a PostgreSQL catalog and ``MARKHOUSE_DATA_PATH`` a shared
# folder or S3-compatible URL (unset: a SQLite catalog, the data folder beside it); ``MARKHOUSE_WAREHOUSE``
# stays this host's file: the SQLite catalog, or with PostgreSQL where its writer lock and staging live.
POSTGRES = re.compile(r"^postgres(ql)?://|(^|\s)(dbname|host)\s*=")  # a URL or libpq ``key=value`` string
REMOTE_DATA_PREFIXES = ("s3://", "s3a://", "r2://", "gcs://", "gs://")
S3_KEYS = ("key_id", "secret", "region", "endpoint", "url_style", "use_ssl")  # MARKHOUSE_S3_<KEY>
# DuckDB's errors for a parquet file that is lost or damaged
DAMAGED_DATA = re.compile("Cannot open file|TProtocolException|Snappy|No magic bytes|decompress|Parquet file")


class LegacyWarehouseError(RuntimeError):
    """The warehouse is (still) a single DuckDB file from the previous layout."""


class NothingPublishedError(RuntimeError):
    """No run has published a snapshot yet."""


class WarehouseCorruptError(RuntimeError):
    """A damaged file, named (``unnamed``: DuckDB's error did not say which data file) with the way out."""

    unnamed = False


class WarehouseOpenError(RuntimeError):
    """The catalog cannot be attached (damaged, or a snapshot that is no longer held)."""


@contextmanager
def naming_damage(path: Path) -> Iterator[None]:
    """Name the damaged file and the way out: DuckDB's error names a block offset, not always a file."""
    try:
        yield
    except duckdb.Error as exc:
        text = str(exc).splitlines()[0] if str(exc) else ""
        if "Corrupt database file" in text:
            raise WarehouseCorruptError(
                f"{path} is damaged ({exc}); move it aside and run `markhouse backfill` over the months you "
                "need: the vendors are the source of every row"
            ) from None
        if not DAMAGED_DATA.search(text):
            raise
        named = re.search(r'"([^"]+\.parquet)"', text)
        error = WarehouseCorruptError(
            f"{named[1] if named else f'a data file read through {path}'} is lost or damaged ({text}); "
            "`markhouse repair` reloads its month"
        )
        error.unnamed = named is None
        raise error from None


class Target(NamedTuple):
    """A table whose rows matching ``keys`` (default: every partition column) ``insert_sql`` replaces."""

    table: str
    insert_sql: str
    keys: tuple[str, ...] | None = None


class Snapshot(NamedTuple):
    snapshot_id: int
    snapshot_time: datetime
    published: bool


def extension_path(package: str, name: str) -> Path:
    path = Path(str(importlib.resources.files(package))) / "extensions" / f"v{duckdb.__version__}"
    path = path / f"{name}.duckdb_extension"
    if not path.exists():
        raise RuntimeError(
            f"{path} is missing: the {package} wheel must match duckdb {duckdb.__version__} (make install)"
        )
    return path


def load_extensions(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Each from its PyPI wheel pinned to this duckdb (``INSTALL`` would need the network)."""
    for name in names:
        con.execute(f"load {_quote(str(extension_path(f'duckdb_extension_{name}', name)))}")


def is_duckdb_file(path: Path) -> bool:
    """A DuckDB database file (its header carries ``DUCK`` at byte 8), not a SQLite catalog."""
    with suppress(OSError), open(path, "rb") as f:
        return f.read(12)[8:12] == b"DUCK"
    return False


def _session(con: duckdb.DuckDBPyConnection) -> None:
    """Per connection and cursor: naive parquet timestamps are UTC (not the host's zone), and a long
    statement draws no progress bar on a script's stdout."""
    con.execute("set TimeZone = 'UTC'; set enable_progress_bar = false")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Warehouse:
    """A DuckLake warehouse: one writer at a time, any number of snapshot readers."""

    def __init__(
        self,
        path: Path | str,
        memory_limit: str | None = None,
        catalog: str | None = None,
        data_path: str | None = None,
    ):
        self.path = unguarded(Path(path))
        self.memory_limit = memory_limit or os.environ.get("MARKHOUSE_DUCKDB_MEMORY_LIMIT", "384MB")
        self.catalog = catalog if catalog is not None else os.environ.get("MARKHOUSE_CATALOG") or None
        if self.catalog is not None and not POSTGRES.search(self.catalog):
            raise ValueError(
                f"MARKHOUSE_CATALOG must be a PostgreSQL URL (postgresql://...) or libpq string "
                f"(dbname=... host=...), got {redact(self.catalog)!r}; unset it for the embedded catalog"
            )
        self._data = data_path if data_path is not None else os.environ.get("MARKHOUSE_DATA_PATH") or None
        self.data_is_remote = self._data is not None and self._data.startswith(REMOTE_DATA_PREFIXES)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.legacy_path = self.path.with_suffix(".duckdb")  # the previous layout's one DuckDB file

    @property
    def data_path(self) -> Path:
        """The local (or mounted shared) data folder; see ``data_location`` for an object-store URL."""
        if self.data_is_remote:
            raise RuntimeError(f"the data path is object storage ({self._data}), not a folder")
        return Path(self._data) if self._data is not None else self.path.with_name(self.path.stem + ".data")

    @property
    def data_location(self) -> str:
        """Where the parquet files go, as DuckLake's DATA_PATH (a folder or a URL, ending in /)."""
        if self.data_is_remote:
            return str(self._data).rstrip("/") + "/"
        return str(self.data_path.resolve()) + os.sep

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
        if not self.path.exists() and (legacy := self.legacy_path) != self.path and is_duckdb_file(legacy):
            raise LegacyWarehouseError(
                f"found a warehouse in the previous layout at {legacy} and no DuckLake at {self.path}; "
                f"import it once with `markhouse import-duckdb {legacy}` (or move it aside to start empty)"
            )

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """A small pool (work is a window of months; DuckDB keeps 80% of RAM) spilling beside the catalog."""
        spill = self.path.parent / ".staging" / "duckdb-spill"
        # DuckDB makes (and removes) only the last folder; a read-only host never spills
        with suppress(OSError):
            spill.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {"memory_limit": self.memory_limit, "temp_directory": str(spill)}
        config |= {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        con = duckdb.connect(config=config)
        _session(con)
        return con

    def _attach(self, con: Con, *, read_only: bool, snapshot: int | None = None) -> None:
        if read_only:
            options = ["read_only", *([f"snapshot_version {int(snapshot)}"] if snapshot is not None else [])]
        else:  # data inlining would keep small inserts in the catalog, out of plain-parquet readers' sight
            options = ["data_inlining_row_limit 0"]
        if not read_only or self.catalog is None:
            options.append(f"data_path {_quote(self.data_location)}")
        if self.catalog is None:
            # files are stored relative to the data path: the folder beside a moved catalog wins
            options.append("override_data_path true")
        load_extensions(con, "sqlite_scanner", "ducklake", *(["postgres_scanner"] if self.catalog else []))
        if self.data_is_remote:
            create_s3_secret(con)
        source = f"postgres:{self.catalog}" if self.catalog is not None else f"sqlite:{self.path}"
        attach = f"attach {_quote('ducklake:' + source)} as {LAKE} ({', '.join(options)})"
        try:  # two hosts creating a new PostgreSQL catalog at once: the loser retries
            with_commit_retry(lambda: con.execute(attach), "attach", also=("already exists", "duplicate key"))
        except duckdb.Error as exc:
            described = redact(self.catalog) if self.catalog is not None else str(self.path)
            if "No snapshot found at version" in str(exc):
                raise WarehouseOpenError(
                    f"snapshot {snapshot} of {described} is not held any more (maintenance expires snapshots "
                    "older than MARKHOUSE_RETENTION_HOURS); `markhouse snapshots` lists those held"
                ) from None
            raise WarehouseOpenError(f"cannot open the warehouse {described}: {redact(str(exc))}") from None
        con.execute(f"use {LAKE}")

    @contextmanager
    def writer(
        self, wait_seconds: float = 3600.0, importing: bool = False, **who: Unpack[Holder]
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of this process's one writer, the schema in place (see ``concurrency``)."""
        if not importing:
            self.check_layout()
        with (
            naming_damage(self.path),
            shared_writer(self.lock_path, self._open_writer, wait_seconds, **who) as con,
            closing(con.cursor()) as cursor,
        ):
            _session(cursor)
            cursor.execute(f"use {LAKE}")
            yield cursor

    def _open_writer(self) -> duckdb.DuckDBPyConnection:
        # a new SQLite catalog in WAL mode: readers and the writer never wait for each other
        if new := self.catalog is None and not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path)) as db:
                db.execute("pragma journal_mode = wal")
        con = self._connect()
        try:
            self._attach(con, read_only=False)
            with_commit_retry(lambda: ensure_tables(con, schema_sql()), "schema")
            if not self.data_is_remote:
                self.data_path.mkdir(parents=True, exist_ok=True)
            if self.catalog is None:  # a tool attaching without DATA_PATH reads this folder too
                con.execute(
                    f"update __ducklake_metadata_{LAKE}.ducklake_metadata set value = $p "
                    "where key = 'data_path' and value <> $p",
                    {"p": self.data_location},
                )
                # a killed writer's files (on a shared catalog another host's in flight: maintenance's)
                cleanup = f"call ducklake_delete_orphaned_files({_quote(LAKE)}, cleanup_all => true)"
                if not new and (orphans := con.execute(cleanup).fetchall()):
                    log.info("removed %d parquet files a killed run left in %s", len(orphans), self.data_path)
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def reader(self, snapshot: int | None = None, latest: bool = False) -> Iterator[Con]:
        """Read-only at the published (or ``snapshot``, ``latest``) snapshot: never blocks or changes."""
        self.check_layout()
        if self.catalog is None and not self.path.exists():  # DuckLake creates a PostgreSQL one
            raise NothingPublishedError(f"no warehouse at {self.path} yet; run a backfill first")
        with naming_damage(self.path), closing(self._connect()) as con:
            if snapshot is None and not latest:  # find the latest published, then attach at it
                self._attach(con, read_only=True)
                snapshot = latest_published(con)
                con.execute(f"use memory; detach {LAKE}")
            self._attach(con, read_only=True, snapshot=None if latest else snapshot)
            yield con

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot still held, oldest first, and whether a run published it."""
        published = f"snapshot_id in (select snapshot_id from {LAKE}.meta.publication)"
        sql = f"select snapshot_id, snapshot_time, {published} from {LAKE}.snapshots() order by 1"
        with self.reader(latest=True) as con:
            return [Snapshot(*row) for row in con.execute(sql).fetchall()]

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
    ) -> int:
        """Per target delete the rows matching ``partitions``, run ``insert_sql``: one transaction, rolled
        back unless the first gets ``expected_rows`` (a join dropped or doubled rows). Returns its rows."""

        def replace() -> int:
            rows = 0
            with transaction(con):
                for i, target in enumerate(targets):
                    match = " and ".join(f"t.{k} = p.{k}" for k in target.keys or partitions.column_names)
                    con.execute(f"delete from {target.table} t using replace_partitions p where {match}")
                    result = con.execute(target.insert_sql, used_params(target.insert_sql, params)).fetchone()
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

        with registered_tables(con, {"replace_partitions": partitions, **(registered or {})}):
            return with_commit_retry(replace, f"replace {targets[0].table}")


@contextmanager
def registered_tables(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> Iterator[None]:
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            con.unregister(name)


def create_s3_secret(con: duckdb.DuckDBPyConnection) -> None:
    """httpfs and the store's credentials from the environment as a temporary secret: never stored, so not in
    the serving file (a BI tool brings its own), and DuckDB's errors name only the secret."""
    load_extensions(con, "httpfs")
    given = {key: value for key in S3_KEYS if (value := os.environ.get(f"MARKHOUSE_S3_{key.upper()}"))}
    if "key_id" not in given or "secret" not in given:
        raise RuntimeError(
            "MARKHOUSE_DATA_PATH is object storage: set MARKHOUSE_S3_KEY_ID and MARKHOUSE_S3_SECRET "
            "(and MARKHOUSE_S3_ENDPOINT, MARKHOUSE_S3_REGION for a non-AWS store)"
        )
    settings = [
        f"{k} {v if k == 'use_ssl' and v in ('true', 'false') else _quote(v)}" for k, v in given.items()
    ]
    con.execute(f"create or replace temporary secret markhouse_data (type s3, {', '.join(settings)})")


CREATE_TABLE = re.compile(r"create table if not exists (\w+\.\w+)", re.IGNORECASE)  # schema.table
ADD_COLUMN = re.compile(r"alter table (\w+)\.(\w+) add column if not exists (\w+)", re.IGNORECASE)


def schema_sql() -> str:
    """``sql/schema/raw.sql``, then every ``sql/sources/<vendor>/raw.sql`` (found: no list to keep)."""
    sources = [p.read_text() for p in sorted(SQL_DIR.glob("sources/*/raw.sql"))]
    return "\n".join([read_sql("schema/raw"), *sources])


def ensure_tables(con: duckdb.DuckDBPyConnection, ddl: str) -> None:
    """What of ``ddl`` is missing, in one snapshot; ``raw.*`` by month (a reload rewrites its month)."""
    sql = "select schema_name, table_name, column_name from duckdb_columns() where database_name = current_database()"
    columns = set(con.execute(sql).fetchall())
    missing = set(CREATE_TABLE.findall(ddl)) - {f"{s}.{t}" for s, t, _ in columns}
    if not missing and set(ADD_COLUMN.findall(ddl)) <= columns:
        return
    in_lake = con.execute("select current_database()").fetchone() == (LAKE,)
    with transaction(con):
        con.execute(ddl)
        for table in sorted(t for t in missing if t.startswith("raw.") and in_lake):
            con.execute(f"alter table {table} set partitioned by (month)")


def raw_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    sql = "select table_name from duckdb_tables() where database_name = current_database() and schema_name = 'raw'"
    return [f"raw.{t}" for (t,) in con.execute(sql + " order by 1").fetchall()]


Relations = tuple[list[Any], list[Any], dict[tuple[str, str], list[tuple[str, str, str]]]]


def relations(con: duckdb.DuckDBPyConnection) -> Relations:
    """The database's tables, views and each one's columns (name, type, comment): ``relations.sql``."""
    tables, views, columns = (
        con.execute(s).fetchall() for s in read_sql("warehouse/relations").split(";\n\n")
    )
    # relations.sql orders the columns by table: one group each
    return tables, views, {key: [c[2:] for c in group] for key, group in groupby(columns, lambda c: c[:2])}


def read_sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


def used_params(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The named parameters ``sql`` refers to (DuckDB rejects unused ones)."""
    return {k: v for k, v in (params or {}).items() if re.search(rf"\${k}\b", sql)}


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute(f"select id from {LAKE}.current_snapshot()").fetchone()
    return int(row[0]) if row else 0


def _published_ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    sql = f"select snapshot_id from {LAKE}.meta.publication order by 1"
    return [int(i) for (i,) in con.execute(sql).fetchall()]


def latest_published(con: duckdb.DuckDBPyConnection) -> int:
    """The snapshot the last finished run published (what readers read)."""
    if not (published := _published_ids(con)):
        raise NothingPublishedError("nothing published yet: run a backfill first")
    return published[-1]


def expire_snapshots(con: duckdb.DuckDBPyConnection, snapshots: Sequence[int]) -> None:
    """Expire ``snapshots`` with their publication records (which would point readers at nothing)."""
    if snapshots:
        versions = ", ".join(map(str, snapshots))
        con.execute(f"call ducklake_expire_snapshots({_quote(LAKE)}, versions => [{versions}])")
        con.execute(f"delete from meta.publication where snapshot_id in ({versions})")


def loaded_months(con: duckdb.DuckDBPyConnection) -> list[Any]:
    """Every month any raw table holds (what a full marts rebuild covers)."""
    union = " union ".join(f"select distinct month from {t}" for t in raw_tables(con) if t != "raw.load_log")
    return [m for (m,) in con.execute(f"{union} order by 1").fetchall()]
