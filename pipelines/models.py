"""Runs the SQL models: ``sql/<layer>/<name>.sql`` or a vendor's ``sql/sources/<vendor>/<layer>/``,
a SELECT in schema ``<layer>``. A file whose first line is ``-- materialized: incremental [by
<column>]`` is a table refreshed by time window (``$window_start``, ``$window_end``; default column
``ts``), the rest are views. A model runs after every ``schema.table`` it reads (``from``/``join``).
Column comments come from ``sql/marts/marts.yml``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import duckdb

from pipelines.months import next_month
from pipelines.progress import Ticker
from pipelines.settings import MARK_LAST_GAP_BPS, SQL_DIR, futures_roll_days, marts_window_rows
from pipelines.warehouse.concurrency import transaction
from pipelines.warehouse.lake import LAKE, _quote, _used, ensure_tables, read_sql, schema_sql
from pipelines.warehouse.serving import MARTS_DOCS, comment_statements, dependency_order, mart_docs

VIEW_LAYERS = ("staging", "intermediate")  # folder = schema
INCREMENTAL_MARKER = "-- materialized: incremental"
_COMMENT = re.compile(r"--[^\n]*")
_READS = re.compile(r"\b(?:from|join)\s+([a-z_]\w*)\.([a-z_]\w*)", re.IGNORECASE)


@dataclass(frozen=True)
class Model:
    name: str
    schema: str
    sql: str
    template: str = ""  # the file's text, ``{sources}`` unfilled (a shared union model)

    @property
    def incremental(self) -> bool:
        return self.sql.startswith(INCREMENTAL_MARKER)

    @property
    def time_column(self) -> str:
        """The column a window refresh deletes by (``-- materialized: incremental by month``)."""
        first = self.sql.split("\n", 1)[0]
        return first.split(" by ", 1)[1].strip() if " by " in first else "ts"

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def reads(self) -> frozenset[str]:
        """The ``schema.table`` relations its SQL reads (``from``/``join``; comments ignored)."""
        body = _COMMENT.sub("", self.sql)
        return frozenset(f"{s}.{t}".lower() for s, t in _READS.findall(body)) - {self.relation}


def in_dependency_order(models: Iterable[Model]) -> list[Model]:
    """``models`` so that each comes after the models it reads (ties by name)."""
    by_name = {m.relation: m for m in sorted(models, key=lambda m: m.relation)}
    return [by_name[n] for n in dependency_order({n: m.reads for n, m in by_name.items()}, "SQL models")]


def _models(folder: str) -> list[Model]:
    """The models of layer ``folder``: ``sql/<folder>/`` and each ``sql/sources/<vendor>/<folder>/``."""
    from pipelines import sources

    folders = [SQL_DIR / folder, *(s.sql_folder / folder for s in sources.sources())]
    paths = [p for d in folders for p in sorted(d.glob("*.sql"))]
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise ValueError(f"two {folder} models named {path.stem}: {seen[path.stem]} and {path}")
        seen[path.stem] = path
    texts = {p: p.read_text() for p in paths}
    return [Model(p.stem, folder, _with_sources(p.stem, t), t) for p, t in texts.items()]


SOURCES = "{sources}"


def _with_sources(name: str, sql: str) -> str:
    """A shared union model (its SQL holds ``{sources}``) filled with each source's relation for it
    (``Source.observations``), unioned by name: a new source needs no edit to the shared model."""
    from pipelines import sources

    if SOURCES not in sql:
        return sql
    relations = [s.observations[name] for s in sources.sources() if name in s.observations]
    if not relations:
        raise ValueError(f"the model {name} unions the sources' relations, and no source declares one")
    return _union(sql, [f"select * from {r}" for r in relations])


def _union(template: str, members: Sequence[str]) -> str:
    return template.replace(SOURCES, "\n    union all by name\n    ".join(members))


def mart_models() -> list[Model]:
    return _models("marts")


def all_models() -> list[Model]:
    """Every staging, intermediate and mart model, each after what it reads."""
    return in_dependency_order(m for layer in (*VIEW_LAYERS, "marts") for m in _models(layer))


ALL_KEYS = ("", "\U0010ffff")  # below and above every instrument key: a range's open ends


def _empty_window(sql: str) -> dict[str, object]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    keys = {"first_key": ALL_KEYS[0], "next_key": ALL_KEYS[1]}
    return _used(sql, {"window_start": epoch, "window_end": epoch, **keys})


DEFAULT_REPORT_SETTINGS = {"mark_last_gap_threshold_bps": MARK_LAST_GAP_BPS}


def build_views(con: duckdb.DuckDBPyConnection, report_settings: Mapping[str, float] | None = None) -> None:
    """(Re)create every view and each missing incremental table (partitioned by month), with
    comments, in one transaction (one snapshot). Registers ``black76`` (fct_option_vol calls it)."""
    from pipelines import options, sources

    options.register(con)

    # every source's raw tables, which the staging views read (a vendor folder's own DDL)
    ensure_tables(con, "\n".join(s.raw_ddl() for s in sources.sources()))
    with transaction(con):
        _build_views(con, report_settings)


def _build_views(con: duckdb.DuckDBPyConnection, report_settings: Mapping[str, float] | None) -> None:
    # the warehouse, or a plain DuckDB database (mart_catalog's empty in-memory one)
    row = con.execute("select current_database()").fetchone()
    in_lake = bool(row and row[0] == LAKE)
    roll = {"futures_roll_days_before_expiry": futures_roll_days()}
    settings = {**DEFAULT_REPORT_SETTINGS, **roll, **(report_settings or {})}
    current = dict(con.execute("select name, value from ref.settings").fetchall())
    if current != settings:
        con.execute("delete from ref.settings")
        con.executemany("insert into ref.settings values (?, ?)", list(settings.items()))
    views = [m for folder in VIEW_LAYERS for m in _models(folder)]
    for schema in VIEW_LAYERS:
        con.execute(f"create schema if not exists {schema}")
    # intermediate models lived in schema staging before: drop those views
    moved = _names(con, "select view_name from duckdb_views() where schema_name = 'staging' and not internal")
    for model in views:
        if model.schema != "staging" and model.name in moved:
            con.execute(f"drop view staging.{model.name}")
    loaded = _loaded_sources(con) if in_lake else None
    for model in in_dependency_order(views):
        sql = _union_of_loaded(con, model, loaded) if loaded is not None else model.sql
        con.execute(f"create or replace view {model.relation} as\n{sql}")
    marts = in_dependency_order(mart_models())
    existing_views = _names(
        con, "select view_name from duckdb_views() where schema_name = 'marts' and not internal"
    )
    existing_tables = _names(con, "select table_name from duckdb_tables() where schema_name = 'marts'")
    for model in marts:
        if model.incremental and model.name not in existing_tables:
            if model.name in existing_views:  # it used to be a view: becomes a table
                con.execute(f"drop view {model.relation}")
            con.execute(
                f"create table {model.relation} as\nselect * from ({model.sql}) limit 0",
                _empty_window(model.sql),
            )
            if in_lake:  # a window refresh then rewrites only its months' files
                partition = (
                    "month"
                    if model.time_column == "month"
                    else f"year({model.time_column}), month({model.time_column})"
                )
                con.execute(f"alter table {model.relation} set partitioned by ({partition})")
        elif model.incremental:  # a column the model gained since (CHANGELOG): added, null until refreshed
            have = _names(
                con,
                f"select column_name from duckdb_columns() where database_name = current_database() and schema_name = 'marts' and table_name = '{model.name}'",
            )
            shape = con.execute(f"describe select * from ({model.sql})", _empty_window(model.sql)).fetchall()
            for column, type_, *_ in (c for c in shape if c[0] not in have):
                con.execute(f'alter table {model.relation} add column "{column}" {type_}')
    for model in marts:
        if not model.incremental:
            con.execute(f"create or replace view {model.relation} as\n{model.sql}")
    # DuckLake keeps comments on tables, their columns and views, not on view columns: the
    # serving file (plain DuckDB) carries those
    apply_comments(con, MARTS_DOCS, view_columns=not in_lake)


def _loaded_sources(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The vendors with a data file in any of their raw tables (the lake's file list, no scan)."""
    from pipelines import sources

    with_files = _names(
        con,
        f"select s.schema_name || '.' || t.table_name from ducklake_table_info({_quote(LAKE)}) as t "
        f"join __ducklake_metadata_{LAKE}.ducklake_schema as s using (schema_id) "
        "where s.end_snapshot is null and t.file_count > 0",
    )
    return {s.name for s in sources.sources() if with_files & set(s.raw_tables())}


def _union_of_loaded(con: duckdb.DuckDBPyConnection, model: Model, loaded: Collection[str]) -> str:
    """``model``'s SQL, or for a shared union model some of whose vendors have no data: the union
    of the vendors in ``loaded``, after a row-less member with the whole union's columns and types
    (the view keeps its shape). DuckLake binds a never-written table slowly (30-45 ms, re-reading
    its catalog), which cost every window up to 0.19 s per mart; here they are bound once."""
    from pipelines import sources

    if SOURCES not in model.template:
        return model.sql
    declaring = [s for s in sources.sources() if model.name in s.observations]
    kept = [s for s in declaring if s.name in loaded]
    if not kept or len(kept) == len(declaring):
        return model.sql
    shape = con.execute(f"describe select * from ({model.sql})").fetchall()
    empty = "select " + ", ".join(f'null::{t} as "{c}"' for c, t, *_ in shape) + " where false"
    members = [empty, *(f"select * from {s.observations[model.name]}" for s in kept)]
    return _union(model.template, members)


def _names(con: duckdb.DuckDBPyConnection, sql: str) -> set[str]:
    return {name for (name,) in con.execute(sql).fetchall()}


def apply_comments(con: duckdb.DuckDBPyConnection, path: Path, view_columns: bool = True) -> None:
    kinds = {
        name: "view" if kind == "VIEW" else "table"
        for name, kind in con.execute(
            "select table_name, table_type from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    }
    for statement in comment_statements(mart_docs(path), kinds, view_columns):
        con.execute(statement)


@dataclass(frozen=True)
class MartColumn:
    name: str
    type: str
    description: str


def mart_catalog() -> dict[str, tuple[str, list[MartColumn]]]:
    """Each mart's description and columns (type, comment), from the models built on an empty
    in-memory database: the Dagster catalog cannot drift from the SQL and marts.yml."""
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(schema_sql())
        build_views(con)
        tables = dict(
            con.execute(
                "select table_name, comment from duckdb_tables() where schema_name = 'marts' union all "
                "select view_name, comment from duckdb_views() where schema_name = 'marts'"
            ).fetchall()
        )
        columns = con.execute(
            "select table_name, column_name, data_type, coalesce(comment, '') from duckdb_columns() "
            "where schema_name = 'marts' order by table_name, column_index"
        ).fetchall()
    finally:
        con.close()
    catalog: dict[str, tuple[str, list[MartColumn]]] = {t: (c or "", []) for t, c in tables.items()}
    for table, name, type_, comment in columns:
        catalog[table][1].append(MartColumn(name, type_, comment))
    return catalog


def month_windows(
    months: list[date], rows: Mapping[date, int] | None = None, max_rows: int = 0, months_per_window: int = 3
) -> list[tuple[datetime, datetime]]:
    """Windows of up to ``months_per_window`` contiguous months, [start, end), and, where ``rows``
    says how many raw rows a month holds, of at most ``max_rows`` (a month alone may hold more: it
    is the smallest window); memory follows a window's rows, so a wide universe gets narrower
    windows. The last window of a contiguous run reaches one instant further, to take in the next
    month's first row (its close-to-close return depends on it)."""
    wanted = sorted(set(months))
    held = rows or {}
    windows: list[tuple[datetime, datetime]] = []
    count = total = 0
    for m in wanted:
        start = datetime(m.year, m.month, 1, tzinfo=UTC)
        end = next_month(start)
        size = held.get(m, 0)
        if (
            windows
            and windows[-1][1] == start
            and count < months_per_window
            and (not max_rows or total + size <= max_rows)
        ):
            windows[-1] = (windows[-1][0], end)
            count, total = count + 1, total + size
        else:
            windows.append((start, end))
            count, total = 1, size
    return [(s, e if e.date() in wanted else e + timedelta(microseconds=1)) for s, e in windows]


def _finite_columns(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """The table's columns, each floating one NULL where NaN or +-inf: a ratio over a near-zero
    vendor change, or a price let past the plausible range (settings.PLAUSIBLE), never publishes
    an infinity (a mark of 1e-320 once gave mark_return_pct = inf). About 1 % of a window."""
    return ", ".join(
        f'case when isfinite("{name}") then "{name}" end as "{name}"'
        if kind in ("DOUBLE", "FLOAT")
        else f'"{name}"'
        for name, kind, *_ in con.execute(f"describe {relation}").fetchall()
    )


@dataclass(frozen=True)
class RefreshResult:
    rows: int
    windows: int
    seconds: float


def refresh_marts(
    con: duckdb.DuckDBPyConnection,
    months: list[date],
    report_settings: Mapping[str, float] | None = None,
    only: Collection[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RefreshResult:
    """Rebuild the incremental marts for ``months`` (and the next month's first row), window by
    window of months, one transaction per model and window: memory stays that of a window (one
    for 48 months held ~6 GB; one transaction per window held every mart's new rows, and a month
    of 100 1m series ran out of the 512 MB pool). Readers read the serving copy, published after.
    ``progress`` hears after every model-window."""
    started = time.perf_counter()
    build_views(con, report_settings)
    held = dict(con.execute(read_sql("warehouse/rows_per_month")).fetchall())
    windows = month_windows(months, held, marts_window_rows())
    rows = 0
    # each after what it reads (the report tables read the facts)
    incremental = [
        m for m in in_dependency_order(mart_models()) if m.incremental and (only is None or m.name in only)
    ]
    finite = {m.name: _finite_columns(con, m.relation) for m in incremental}
    ticker = Ticker("marts", "model-windows", len(windows) * len(incremental), progress or (lambda _: None))
    for start, end in windows:
        params: dict[str, object] = {"window_start": start, "window_end": end}
        for model in incremental:
            select, values = f"select {finite[model.name]} from ({model.sql})", params
            if "$first_key" in model.sql:
                select, values = _by_instruments(con, select, params)
            with transaction(con):
                column = model.time_column
                con.execute(
                    f"delete from {model.relation} "
                    f"where {column} >= $window_start::timestamptz and {column} < $window_end::timestamptz",
                    params,
                )
                result = con.execute(f"insert into {model.relation} by name\n{select}", values).fetchone()
                rows += int(result[0]) if result else 0
                ticker.unit_done(int(result[0]) if result else 0)
                ticker.tick()
            if not values:  # it read the ranges' temporary table
                con.execute("drop table temp.window_rows")
    ticker.tick(force=True)  # the totals, however short the refresh
    return RefreshResult(rows, len(windows), time.perf_counter() - started)


def _by_instruments(
    con: duckdb.DuckDBPyConnection, select: str, window: Mapping[str, object]
) -> tuple[str, dict[str, object]]:
    """A model taking ``$first_key``/``$next_key`` runs a window of over marts_window_rows() raw rows once
    per instrument range into a temporary table, read back in order: memory stays bounded, and the month's
    one file holds each range together, so row-group min/max let a one-instrument query skip the rest."""
    sql = read_sql("warehouse/instrument_batches")
    cuts = [k for (k,) in con.execute(sql, {**window, "max_rows": marts_window_rows()}).fetchall()]
    bounds = [ALL_KEYS[0], *cuts, ALL_KEYS[1]]
    ranges = [{**window, "first_key": a, "next_key": b} for a, b in pairwise(bounds)]
    if len(ranges) == 1:
        return select, ranges[0]
    con.execute(f"create or replace temp table window_rows as\n{select}", ranges[0])
    for values in ranges[1:]:
        con.execute(f"insert into temp.window_rows\n{select}", values)
    return "select * from temp.window_rows", {}
