"""The serving file: a small read-only DuckDB file of views over the published snapshot's parquet
files, for drivers and BI tools that cannot load DuckLake, rewritten at every publish."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import duckdb
import yaml

from pipelines.settings import SQL_DIR
from pipelines.warehouse.concurrency import remove_stale_temporaries, transaction, with_commit_retry
from pipelines.warehouse.lake import (
    LAKE,
    REMOTE_DATA_PREFIXES,
    Warehouse,
    _quote,
    create_s3_secret,
    current_snapshot,
    naming_damage,
    relations,
)

T = TypeVar("T")

# An older storage format on purpose: BI drivers in the field lag DuckDB, and every DuckDB >= 1.0 reads it.
SERVING_STORAGE_VERSION = "v1.0.0"
MARTS_DOCS = SQL_DIR / "marts" / "marts.yml"  # the marts' and their columns' comments
_VIEW_HEAD = re.compile(r"^\s*create\s+(?:or\s+replace\s+)?view\s+(?:\"[^\"]+\"|[\w.]+)\s+as\s+", re.I | re.S)


class PublishResult(NamedTuple):
    path: Path
    snapshot: int
    tables: dict[str, int]
    files: int
    seconds: float


@contextmanager
def open_serving(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only connection to the serving file, as a BI tool would open it (status, summary, checks)."""
    with naming_damage(Path(path)), closing(duckdb.connect(str(path), read_only=True)) as con:
        con.execute("set TimeZone = 'UTC'")
        if os.environ.get("MARKHOUSE_DATA_PATH", "").startswith(REMOTE_DATA_PREFIXES):
            create_s3_secret(con)
        yield con


def dependency_order(items: Mapping[str, T], reads: Callable[[T], Collection[str]], what: str) -> list[T]:
    """``items`` (name -> item) each after the names it ``reads``; else in the given order."""
    pending, uses = list(items), {n: set(reads(item)) for n, item in items.items()}
    ordered: list[T] = []
    while pending:
        ready = [n for n in pending if not (uses[n] & set(pending)) - {n}]
        if not ready:
            raise ValueError(f"{what} that read each other: {', '.join(pending)}")
        ordered += [items[n] for n in ready]
        pending = [n for n in pending if n not in ready]
    return ordered


def view_body(sql: str) -> str:
    """The SELECT of a ``CREATE VIEW name AS SELECT ...`` statement (as duckdb_views() gives it)."""
    return _VIEW_HEAD.sub("", sql, count=1).rstrip().rstrip(";")


def _table_view_sql(columns: Sequence[tuple], files: list[tuple[str, str | None]]) -> tuple[str, int]:
    """A SELECT over a table's files less deleted rows (anti join only where deleted: else a full scan)."""
    if not files:
        return empty_select(columns), 0
    names = ", ".join(f'f."{c}"' for c, *_ in columns)
    clean = [d for d, x in files if not x]
    deleted = [(d, x) for d, x in files if x]
    branches = (
        [f"select {names} from read_parquet({_listed(clean)}, hive_partitioning = false) f"] if clean else []
    )
    if deleted:
        data, deletes = zip(*deleted, strict=True)
        branches.append(
            f"select {names} from read_parquet({_listed(data)}, hive_partitioning = false, filename = true, "
            f"file_row_number = true) f anti join read_parquet({_listed(deletes)}) d "
            "on f.filename = d.file_path and f.file_row_number = d.pos"
        )
    return " union all ".join(branches), len(files) + len(deleted)


def empty_select(columns: Sequence[tuple]) -> str:
    """No row, of the (name, type, ...) ``columns``' types."""
    return "select " + ", ".join(f'null::{t} as "{c}"' for c, t, *_ in columns) + " where false"


def _listed(paths: Sequence[str | None]) -> str:
    return "[" + ", ".join(_quote(str(p)) for p in paths) + "]"


class _Published(NamedTuple):
    snapshot: int
    views: list[tuple[str, str, str, str | None]]  # every relation: (schema, name, select, comment)
    files: int  # the parquet files they name
    counts: dict[str, int]
    data_path: str


def _read_published(con: duckdb.DuckDBPyConnection) -> _Published:
    """In one transaction (one catalog read), one statement per kind (one per table: a round trip each)."""
    with transaction(con):
        snapshot = current_snapshot(con)
        tables, views, columns = relations(con)
        tables = [t for t in tables if t[0] != "meta"]
        # the materialized marts (views are computed when read, so counting them would cost a scan)
        counting = [f"select 'marts.{t}', count(*) from marts.{t}" for s, t, _ in tables if s == "marts"]
        counts = dict(_union_all(con, counting))
        files: dict[tuple[str, str], list[tuple[str, str | None]]] = {(s, t): [] for s, t, _ in tables}
        listed = [
            f"select {i} as t, data_file, delete_file from ducklake_list_files({_quote(LAKE)}, {_quote(t)}, "
            f"schema => {_quote(s)}, snapshot_version => {int(snapshot)})"
            for i, (s, t, _) in enumerate(tables)
        ]
        for i, data, delete in _union_all(con, listed, " order by t, data_file"):
            files[tables[i][:2]].append((data, delete))
        (data_path,) = con.execute(
            f"select value from __ducklake_metadata_{LAKE}.ducklake_metadata where key = 'data_path'"
        ).fetchone() or ("",)
    made = [(s, t, *_table_view_sql(columns[(s, t)], files[(s, t)]), c) for s, t, c in tables]
    bodies = [(s, t, sql, c) for s, t, sql, _, c in made]
    by_name = {f"{s}.{n}": (s, n, sql, c) for s, n, sql, c in views}  # after the views its SQL names
    in_order = dependency_order(by_name, lambda v: {o for o in by_name if o.lower() in v[2].lower()}, "views")
    bodies += [(s, n, view_body(sql), c) for s, n, sql, c in in_order]
    return _Published(snapshot, bodies, sum(m[3] for m in made), counts, data_path)


def _union_all(con: duckdb.DuckDBPyConnection, selects: list[str], tail: str = "") -> list[Any]:
    return con.execute(" union all ".join(selects) + tail).fetchall() if selects else []


@lru_cache(maxsize=4)
def _mart_docs(mtime_ns: int, size: int) -> dict[str, Any]:
    """``marts.yml``, parsed once per process while unchanged (parsing cost more than publishing)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where installed
    return yaml.load(MARTS_DOCS.read_text(), Loader=loader)


def comment_statements(kinds: Mapping[str, str], view_columns: bool = True) -> list[str]:
    """COMMENTs documenting the marts in ``kinds`` (name -> 'table' or 'view') from ``marts.yml``."""
    out, stat = [], MARTS_DOCS.stat()
    for table, spec in ((t, s) for t, s in _mart_docs(stat.st_mtime_ns, stat.st_size).items() if t in kinds):
        out.append(f"comment on {kinds[table]} marts.{table} is {_quote(spec['description'])}")
        columns = spec["columns"].items() if kinds[table] != "view" or view_columns else []
        out += [f"comment on column marts.{table}.{c} is {_quote(text)}" for c, text in columns]
    return out


def write_serving_file(serving_path: Path, published: _Published) -> int:
    """One script (statement round trips were most of its time) into a new file ``serving_path`` links to:
    DuckDB keeps a database per resolved path, so a holder of the previous file opens the new one next."""
    serving_path = Path(serving_path)
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(serving_path.parent)  # the serving file may live in another folder
    tmp = serving_path.with_name(f".{serving_path.name}.{os.getpid()}.tmp")
    script = [f"create schema if not exists {s}" for s in sorted({s for s, *_ in published.views} | {"meta"})]
    for schema, name, sql, comment in published.views:
        script.append(f"create view {schema}.{name} as {sql}")
        script += [f"comment on view {schema}.{name} is {_quote(comment)}"] if comment else []
    # every relation is a view here, and DuckDB keeps comments on view columns (DuckLake does not)
    script += comment_statements({n: "view" for s, n, *_ in published.views if s == "marts"})
    counts, data_path = _quote(json.dumps(published.counts, sort_keys=True)), _quote(published.data_path)
    script.append(
        f"create table meta.publication as select {published.snapshot}::bigint as snapshot_id, "
        f"now() as published_at, {counts}::json as row_counts, {data_path} as data_path"
    )
    stem, suffix = serving_path.stem, serving_path.suffix
    try:
        config: dict[str, Any] = {"storage_compatibility_version": SERVING_STORAGE_VERSION}
        with duckdb.connect(str(tmp), config=config) as out:
            if published.data_path.startswith(REMOTE_DATA_PREFIXES):  # a view reads its files when created
                create_s3_secret(out)
            out.execute(";\n".join(["begin transaction", *script, "commit"]))  # one commit, not one each
        final = serving_path.with_name(f"{stem}.{published.snapshot}.{secrets.token_hex(4)}{suffix}")
        os.replace(tmp, final)
        os.symlink(final.name, tmp)  # relative: the folder can move
        os.replace(tmp, serving_path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
    dir_fd = os.open(serving_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    # the previous file stays for a reader that resolved the link before the swap (open ones read on)
    pattern = re.compile(rf"{re.escape(stem)}\.\d+\.[0-9a-f]{{8}}{re.escape(suffix)}")
    older = [p for p in serving_path.parent.iterdir() if pattern.fullmatch(p.name) and p != final]
    for old in sorted(older, key=lambda p: p.stat().st_mtime_ns)[:-1]:
        old.unlink(missing_ok=True)
    return published.files


def serve_current(warehouse: Warehouse, serving_path: Path) -> bool:
    """Rewrite a missing serving file, or one naming another data folder (a moved or copied warehouse)."""
    # a shared catalog's data path is the same everywhere; a serving file without its lake is all there is
    if warehouse.catalog is not None or (not warehouse.path.exists() and Path(serving_path).exists()):
        return False
    try:
        with open_serving(serving_path) as con:
            row = con.execute("select * from meta.publication").fetchone()
            columns = [d[0] for d in con.description]
        # a file of an earlier version lacks the column: the next publish writes it
        if "data_path" not in columns or (row and row[columns.index("data_path")] == warehouse.data_location):
            return False
    except duckdb.Error:
        if Path(serving_path).exists():
            raise
    with warehouse.writer(), warehouse.reader() as con:  # the lock: no publish races this one
        write_serving_file(serving_path, _read_published(con))
    return True


def publish_serving(con: duckdb.DuckDBPyConnection, serving_path: Path) -> PublishResult:
    """Record the snapshot readers attach (nothing copied), then the serving file: never a mix of two."""
    started = time.perf_counter()
    published = _read_published(con)
    record = {"s": published.snapshot, "t": json.dumps(published.counts, sort_keys=True)}
    insert = "insert into meta.publication values ($s, now(), $t)"
    with_commit_retry(lambda: con.execute(insert, record), "publish")
    files = write_serving_file(serving_path, published)
    seconds = time.perf_counter() - started
    return PublishResult(Path(serving_path), published.snapshot, published.counts, files, seconds)
