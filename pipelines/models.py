"""Runs the SQL models: ``sql/<layer>/<name>.sql`` or ``sql/sources/<vendor>/<layer>/``, a SELECT in
schema ``<layer>``, after every ``schema.table`` it reads; one whose first line is ``-- materialized:
incremental [by <column>]`` is a table refreshed by time window (``$window_start``, ``$window_end``;
default column ``ts``), the rest are views. Comments come from ``sql/marts/marts.yml``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import duckdb

from pipelines.months import month_bounds
from pipelines.progress import Ticker
from pipelines.settings import MARK_LAST_GAP_BPS, SQL_DIR, futures_roll_days, marts_window_rows
from pipelines.warehouse.concurrency import Con, transaction
from pipelines.warehouse.lake import LAKE, ensure_tables, read_sql, relations, schema_sql, used_params
from pipelines.warehouse.serving import comment_statements, dependency_order, empty_select

VIEW_LAYERS = ("staging", "intermediate")  # folder = schema
INCREMENTAL_MARKER = "-- materialized: incremental"
_COMMENT = re.compile(r"--[^\n]*")
_READS = re.compile(r"\b(?:from|join)\s+([a-z_]\w*)\.([a-z_]\w*)", re.IGNORECASE)
_NEEDS = re.compile(r"^-- needs kind: (.+)$", re.MULTILINE)
PACKAGE = Path(__file__).resolve().parent
CATALOG_INPUTS = {".sql", ".yml", ".yaml", ".py"}  # what a mart's columns and comments come from


class Model(NamedTuple):
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
        return self.sql.split("\n", 1)[0].partition(" by ")[2].strip() or "ts"

    @property
    def needs(self) -> frozenset[str]:
        """The instrument kinds without which it has no rows (``-- needs kind: option``): a mart that holds
        none is not refreshed while ``ref.instrument`` lists none (each is a statement a window)."""
        return frozenset(found.group(1).split()) if (found := _NEEDS.search(self.sql)) else frozenset()

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def reads(self) -> frozenset[str]:
        """The ``schema.table`` relations its SQL reads (``from``/``join``; comments ignored)."""
        reads = _READS.findall(_COMMENT.sub("", self.sql))
        return frozenset(f"{s}.{t}".lower() for s, t in reads) - {self.relation}


def in_dependency_order(models: Iterable[Model]) -> list[Model]:
    """``models`` so that each comes after the models it reads (ties by name)."""
    by_name = {m.relation: m for m in sorted(models, key=lambda m: m.relation)}
    return dependency_order(by_name, lambda m: m.reads, "SQL models")


def _models(folder: str) -> list[Model]:
    """The models of layer ``folder``: ``sql/<folder>/`` and each ``sql/sources/<vendor>/<folder>/``."""
    from pipelines import sources

    folders = [SQL_DIR / folder, *(s.sql_folder / folder for s in sources.sources())]
    texts = {p: p.read_text() for d in folders for p in sorted(d.glob("*.sql"))}
    seen: dict[str, Path] = {}
    for path in texts:
        if (other := seen.setdefault(path.stem, path)) != path:
            raise ValueError(f"two {folder} models named {path.stem}: {other} and {path}")
    return [Model(p.stem, folder, _with_sources(p.stem, t), t) for p, t in texts.items()]


SOURCES = "{sources}"


def _with_sources(name: str, sql: str, con: Con | None = None, loaded: Collection[str] = ()) -> str:
    """A shared model's ``{sources}``: the union of each source's relation (a new source edits none). With
    the ``loaded`` vendors, theirs only after a typed row-less member (the view keeps its shape): DuckLake
    binds a never-written table slowly (30-45 ms), up to 0.19 s per mart-window."""
    from pipelines import sources

    if SOURCES not in sql:
        return sql
    members = {
        s.name: f"select * from {s.observations[name]}" for s in sources.sources() if name in s.observations
    }
    if not members:
        raise ValueError(f"the model {name} unions the sources' relations, and no source declares one")
    union = sql.replace(SOURCES, "\n    union all by name\n    ".join(members.values()))
    kept = [member for vendor, member in members.items() if vendor in loaded]
    if con is None or len(kept) in (0, len(members)):
        return union
    shape = con.execute(f"describe select * from ({union})").fetchall()
    return sql.replace(SOURCES, "\n    union all by name\n    ".join([empty_select(shape), *kept]))


def mart_models() -> list[Model]:
    return _models("marts")


def all_models() -> list[Model]:
    """Every staging, intermediate and mart model, each after what it reads."""
    return in_dependency_order(m for layer in (*VIEW_LAYERS, "marts") for m in _models(layer))


ALL_KEYS = ("", "\U0010ffff")  # below and above every instrument key: a range's open ends


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_WINDOW = {"window_start": EPOCH, "window_end": EPOCH, "first_key": ALL_KEYS[0], "next_key": ALL_KEYS[1]}


def build_views(con: Con, report_settings: Mapping[str, float] | None = None) -> frozenset[str]:
    """Every view and missing mart table, with comments, in one snapshot (``black76`` registered for SQL);
    returns the staging and intermediate views whose definition is new (the rest were replaced by the same)."""
    from pipelines import options, sources

    options.register(con)
    ensure_tables(con, "\n".join(s.raw_ddl() for s in sources.sources()))  # the raw tables staging reads
    in_lake = con.execute("select current_database()").fetchone() == (LAKE,)
    roll = {"futures_roll_days_before_expiry": futures_roll_days()}
    settings = {"mark_last_gap_threshold_bps": MARK_LAST_GAP_BPS, **roll, **(report_settings or {})}
    with transaction(con):
        if dict(con.execute("select name, value from ref.settings").fetchall()) != settings:
            con.execute("delete from ref.settings")
            con.executemany("insert into ref.settings values (?, ?)", list(settings.items()))
        con.execute(";".join(f"create schema if not exists {schema}" for schema in VIEW_LAYERS))
        tables, views, columns = relations(con)
        kind = {(s, n): "table" for s, n, _ in tables} | {(s, n): "view" for s, n, *_ in views}
        view_models = [m for folder in VIEW_LAYERS for m in _models(folder)]
        for model in view_models:  # intermediate models lived in schema staging before: drop those views
            if model.schema != "staging" and kind.get(("staging", model.name)) == "view":
                con.execute(f"drop view staging.{model.name}")
        loaded = _loaded_sources(con) if in_lake else ()
        for model in in_dependency_order(view_models):
            sql = _with_sources(model.name, model.template, con, loaded)
            con.execute(f"create or replace view {model.relation} as\n{sql}")
        after = con.execute(read_sql("warehouse/relations").split(";\n\n")[1]).fetchall()
        changed = frozenset(f"{s}.{n}" for s, n, *_ in set(after) - set(views) if s in VIEW_LAYERS)
        marts = in_dependency_order(mart_models())
        for model in (m for m in marts if m.incremental):
            empty = used_params(model.sql, NO_WINDOW)
            if kind.get(("marts", model.name)) == "table":  # new columns (CHANGELOG): null until refreshed
                have = {c for c, *_ in columns[("marts", model.name)]}
                shape = con.execute(f"describe select * from ({model.sql})", empty).fetchall()
                for column, type_, *_ in (c for c in shape if c[0] not in have):
                    con.execute(f'alter table {model.relation} add column "{column}" {type_}')
                continue
            if kind.get(("marts", model.name)) == "view":  # it used to be a view: becomes a table
                con.execute(f"drop view {model.relation}")
            con.execute(f"create table {model.relation} as\nselect * from ({model.sql}) limit 0", empty)
            if in_lake:  # a window refresh then rewrites only its months' files
                column = model.time_column
                partition = "month" if column == "month" else f"year({column}), month({column})"
                con.execute(f"alter table {model.relation} set partitioned by ({partition})")
        for model in (m for m in marts if not m.incremental):
            con.execute(f"create or replace view {model.relation} as\n{model.sql}")
        # DuckLake keeps no comments on view columns: the serving file (plain DuckDB) carries those
        kinds = {m.name: "table" if m.incremental else "view" for m in marts}
        for statement in comment_statements(kinds, view_columns=not in_lake):
            con.execute(statement)
    return changed


def _loaded_sources(con: Con) -> set[str]:
    """The vendors with a data file in any of their raw tables (the lake's file list, no scan)."""
    from pipelines import sources

    with_files = {t for (t,) in con.execute(read_sql("warehouse/tables_with_files")).fetchall()}
    return {s.name for s in sources.sources() if with_files & set(s.raw_tables())}


class MartColumn(NamedTuple):
    name: str
    type: str
    description: str


def mart_catalog() -> dict[str, tuple[str, list[MartColumn]]]:
    """Each mart's description and columns, from the models built in memory: no drift from the SQL. Kept
    in the user's cache by a hash of the SQL and the code (building them costs every command 0.25-0.4 s)."""
    digest = hashlib.sha256(duckdb.__version__.encode())
    for path in sorted(p for d in (SQL_DIR, PACKAGE) for p in d.rglob("*") if p.suffix in CATALOG_INPUTS):
        digest.update(f"{path}\0".encode() + path.read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")  # read per call: tests move it
    cached = cache / "markhouse" / f"mart-catalog-{digest.hexdigest()[:16]}.json"
    try:
        catalog = json.loads(cached.read_text())
    except (OSError, ValueError):  # none yet, or one half written meanwhile: built again
        with duckdb.connect() as con:
            con.execute("set TimeZone = 'UTC'")
            con.execute(schema_sql())
            build_views(con)
            tables, views, columns = relations(con)
        marts = [(r[1], r[-1]) for r in [*tables, *views] if r[0] == "marts"]
        catalog = {n: (comment or "", columns[("marts", n)]) for n, comment in marts}
        with suppress(OSError):  # a read-only home: built each time, as before
            cached.parent.mkdir(parents=True, exist_ok=True)
            for old in cached.parent.glob("mart-catalog-*.json"):  # an earlier version's, never read again
                old.unlink(missing_ok=True)
            cached.write_text(json.dumps(catalog))
    return {n: (text, [MartColumn(*c) for c in columns]) for n, (text, columns) in catalog.items()}


def month_windows(
    months: list[date], rows: Mapping[date, int] | None = None, max_rows: int = 0, months_per_window: int = 3
) -> list[tuple[datetime, datetime]]:
    """[start, end) windows of up to ``months_per_window`` contiguous months and ``max_rows`` raw rows (memory
    follows them); a run's last window reaches one instant on, for the next month's first row (its return)."""
    wanted = sorted(set(months))
    windows: list[tuple[datetime, datetime]] = []
    count = total = 0
    for m in wanted:
        (start, end), size = month_bounds(m), (rows or {}).get(m, 0)
        fits = count < months_per_window and (not max_rows or total + size <= max_rows)
        if windows and windows[-1][1] == start and fits:
            windows[-1], count, total = (windows[-1][0], end), count + 1, total + size
        else:
            windows.append((start, end))
            count, total = 1, size
    return [(s, e if e.date() in wanted else e + timedelta(microseconds=1)) for s, e in windows]


def _finite_columns(con: Con, relation: str) -> str:
    """Floats NULL where NaN or +-inf: a mark of 1e-320 once gave mark_return_pct = inf (1 % of a window)."""
    return ", ".join(
        f'case when isfinite("{name}") then "{name}" end as "{name}"'
        if kind in ("DOUBLE", "FLOAT")
        else f'"{name}"'
        for name, kind, *_ in con.execute(f"describe {relation}").fetchall()
    )


class RefreshResult(NamedTuple):
    rows: int
    windows: int
    seconds: float
    new_views: frozenset[str] = frozenset()  # staging and intermediate views whose definition changed


def refresh_marts(
    con: Con,
    months: list[date],
    report_settings: Mapping[str, float] | None = None,
    only: Collection[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RefreshResult:
    """Rebuild the incremental marts for ``months``, one transaction per model and window: memory stays a
    window's (48 months at once held ~6 GB; every mart's rows of a window ran out of the 512 MB pool)."""
    started = time.perf_counter()
    new_views = build_views(con, report_settings)
    held = dict(con.execute(read_sql("warehouse/rows_per_month")).fetchall())
    windows = month_windows(months, held, marts_window_rows())
    rows = 0
    marts = in_dependency_order(mart_models())  # each after what it reads (report tables read the facts)
    incremental = [m for m in marts if m.incremental and (only is None or m.name in only)]
    listed = {kind for (kind,) in con.execute("select distinct kind from ref.instrument").fetchall()}
    incremental = [
        m
        for m in incremental
        if not m.needs or m.needs & listed or con.execute(f"select 1 from {m.relation} limit 1").fetchone()
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
                rows += (inserted := int(result[0]) if result else 0)
                ticker.unit_done(inserted)
                ticker.tick()
            if not values:  # it read the ranges' temporary table
                con.execute("drop table temp.window_rows")
    ticker.tick(force=True)  # the totals, however short the refresh
    return RefreshResult(rows, len(windows), time.perf_counter() - started, new_views)


def _by_instruments(con: Con, select: str, window: Mapping[str, object]) -> tuple[str, dict[str, object]]:
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
