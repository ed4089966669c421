"""The measured paths. Each runs in a fresh process (``python -m bench.paths NAME ARGS_JSON``) so that
start-up and peak RSS are its own; it prints one JSON line with its phase timings."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

REPO = Path(__file__).resolve().parent.parent

COLUMNS = (
    "time, last_price, index_price, mark_price, last_price_pct_change, index_price_pct_change, "
    "mark_price_pct_change, mark_index_pct_change_ratio, mark_last_pct_change_ratio, index_last_pct_change_ratio"
)


def _db(args: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    Path(args["db"]).unlink(missing_ok=True)
    con = duckdb.connect(args["db"])
    con.execute("set TimeZone = 'UTC'")
    return con


def limit(args: dict[str, Any]) -> dict[str, float]:
    """DuckDB's own load limit: one INSERT ... SELECT over every local file."""
    con = _db(args)
    con.execute(
        f"create table prices as select {COLUMNS} from read_parquet($f) limit 0", {"f": args["files"][:1]}
    )
    t = time.perf_counter()
    con.execute(f"insert into prices select {COLUMNS} from read_parquet($f)", {"f": args["files"]})
    return {"load": time.perf_counter() - t}


def per_month_tx(args: dict[str, Any]) -> dict[str, float]:
    """The same, one transaction per month (delete + insert), as a naive atomic replace would."""
    con = _db(args)
    con.execute(
        f"create table prices as select {COLUMNS} from read_parquet($f) limit 0", {"f": args["files"][:1]}
    )
    by_month: dict[str, list[str]] = {}
    for f in args["files"]:
        by_month.setdefault(Path(f).stem, []).append(f)
    t = time.perf_counter()
    for month, files in sorted(by_month.items()):
        con.execute("begin")
        con.execute("delete from prices where strftime(time, '%Y-%m') = $m", {"m": month})
        con.execute(f"insert into prices select {COLUMNS} from read_parquet($f)", {"f": files})
        con.execute("commit")
    return {"load": time.perf_counter() - t}


def _listing(args: dict[str, Any]) -> list[tuple[str, str]]:
    import requests

    out = []
    for symbol in args["symbols"]:
        r = requests.get(
            f"{args['base_url']}/data/derivative_price",
            params={
                "timestamp": "exchange",
                "interval": "1m",
                "exchange": "binance-futures",
                "symbol": symbol,
                "start_date": args["start"],
                "end_date": args["end"],
            },
            headers={"X-API-KEY": args["api_key"]},
            timeout=60,
        )
        r.raise_for_status()
        out += [(f"{symbol}-{f['year']}-{f['month']:02d}", f["url"]) for f in r.json()["files"]]
    return out


def http_then_load(args: dict[str, Any]) -> dict[str, float]:
    """Sequential download over HTTP to disk, then one INSERT (no validation, no atomic replace)."""
    import requests

    t = time.perf_counter()
    folder = Path(args["tmp"])
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    with requests.Session() as s:
        for name, url in _listing(args):
            path = folder / f"{name}.parquet"
            path.write_bytes(s.get(url, timeout=120).content)
            files.append(str(path))
    download = time.perf_counter() - t
    con = _db(args)
    con.execute(f"create table prices as select {COLUMNS} from read_parquet($f) limit 0", {"f": files[:1]})
    con.execute(f"insert into prices select {COLUMNS} from read_parquet($f)", {"f": files})
    return {"download": download, "load": time.perf_counter() - t - download}


def _client(args: dict[str, Any], output: str) -> dict[str, float]:
    import aperiodic

    con = _db(args)
    t = time.perf_counter()
    first = True
    for symbol in args["symbols"]:
        frame = aperiodic.get_derivative_metrics(
            args["api_key"],
            metric="derivative_price",
            timestamp="exchange",
            interval="1m",
            exchange="binance-futures",
            symbol=symbol,
            start_date=date.fromisoformat(args["start"]),
            end_date=date.fromisoformat(args["end"]),
            base_url=args["base_url"],
            show_progress=False,
            output=output,
        )
        con.register("frame", frame)
        con.execute(
            "create table prices as select * from frame"
            if first
            else "insert into prices select * from frame"
        )
        con.unregister("frame")
        first = False
    return {"load": time.perf_counter() - t}


def client_polars(args: dict[str, Any]) -> dict[str, float]:
    """The vendor's own client (polars) -> DataFrame -> DuckDB, one symbol at a time."""
    return _client(args, "polars")


def client_pandas(args: dict[str, Any]) -> dict[str, float]:
    """The vendor's own client (pandas) -> DataFrame -> DuckDB."""
    return _client(args, "pandas")


def command(checkout: str | None) -> list[str]:
    """The ``markhouse`` command as a user runs it; a baseline checkout's through its module (the
    installed script is this checkout's and may call what the baseline's cli.py lacks)."""
    if checkout is None or Path(checkout).resolve() == REPO.resolve():
        return [str(Path(sys.executable).parent / "markhouse")]
    return [sys.executable, "-m", "pipelines.cli"]


def markhouse(args: dict[str, Any]) -> dict[str, float]:
    """markhouse's real path, as a user runs it: one `markhouse backfill` range run (Dagster assets:
    download, validation, atomic replace, marts, serving copy)."""
    if args.get("fresh", True):
        _fresh_lake(args["lake"])
    env = {**os.environ, **args["env"], "MARKHOUSE_WAREHOUSE": args["lake"]}
    summary = Path(args["lake"]).with_name("backfill-summary.json")
    summary.unlink(missing_ok=True)
    t = time.perf_counter()
    out = subprocess.run(
        [
            *command(args.get("cwd")),
            "backfill",
            "--start",
            args["start"][:7],
            "--end",
            args["end"][:7],
            "--summary-json",
            str(summary),
        ],
        env=env,
        cwd=args.get("cwd"),  # a baseline's checkout: Dagster resolves its step processes' code from it
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    total = time.perf_counter() - t
    # the phases as the run recorded them (`markhouse backfill --summary-json`), not its log lines
    return {"total": total, **json.loads(summary.read_text())["phases"]}


def marts_one_month(args: dict[str, Any]) -> dict[str, float]:
    """Rebuilding the marts after reloading one month, on an existing warehouse."""
    from pipelines.models import refresh_marts
    from pipelines.warehouse.lake import Warehouse

    with Warehouse(args["lake"]).writer() as con:
        t = time.perf_counter()
        refresh_marts(con, [date.fromisoformat(args["month"])])
        return {"refresh": time.perf_counter() - t}


def _fresh_lake(catalog: str) -> None:
    import shutil

    from pipelines.warehouse.lake import Warehouse

    wh = Warehouse(catalog)
    for path in (wh.path, Path(f"{wh.path}-wal"), Path(f"{wh.path}-shm"), wh.lock_path):
        path.unlink(missing_ok=True)
    shutil.rmtree(wh.data_path, ignore_errors=True)


def limit_lake(args: dict[str, Any]) -> dict[str, float]:
    """The raw load limit into the same storage: one INSERT ... SELECT over every local file into a
    month-partitioned DuckLake table (what the floor counts)."""
    from pipelines.warehouse.lake import Warehouse

    catalog = str(Path(args["lake"]).with_name("limit-lake.sqlite"))
    _fresh_lake(catalog)
    with Warehouse(catalog).writer() as con:
        con.execute(
            f"create table prices as select {COLUMNS}, date_trunc('month', time)::date as month "
            "from read_parquet($f) limit 0",
            {"f": args["files"][:1]},
        )
        con.execute("alter table prices set partitioned by (month)")
        t = time.perf_counter()
        con.execute(
            f"insert into prices select {COLUMNS}, date_trunc('month', time)::date from read_parquet($f)",
            {"f": args["files"]},
        )
        load = time.perf_counter() - t
    _fresh_lake(catalog)
    return {"load": load}


def floor(args: dict[str, Any]) -> dict[str, float]:
    """What the storage itself needs for the rest of the contract, on the warehouse a backfill left:
    write the materialized marts' rows once into a fresh DuckLake (the same storage). Together with
    the raw load limit into that storage, the least any implementation of CONTRACT.md's
    materialized marts can take on this machine (publishing no longer copies anything)."""
    from pipelines.warehouse.lake import Warehouse
    from pipelines.warehouse.maintenance import data_bytes

    source = Warehouse(args["lake"])
    target = str(source.path.with_name("floor.sqlite"))
    _fresh_lake(target)
    write = 0.0
    with source.reader() as con:
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from duckdb_tables() where database_name = 'lake' and schema_name = 'marts'"
            ).fetchall()
        ]
        con.execute("set memory_limit = '16GB'")
        with Warehouse(target).writer() as out:
            for name in tables:
                # each table is first read into memory, so only the write is timed
                staged = con.execute(f"select * from marts.{name}").arrow()
                out.register("staged", staged)
                t = time.perf_counter()
                out.execute(f"create table marts.{name} as select * from staged")
                write += time.perf_counter() - t
                out.unregister("staged")
    _fresh_lake(target)
    return {"write_marts": write, "copy": 0.0, "gb": data_bytes(source.data_path) / 1e9}


def serving_queries(args: dict[str, Any]) -> dict[str, float]:
    """Today's layout for comparison: the published snapshot materialized into one DuckDB file (the
    previous layout's serving copy: raw, reference and mart tables, mart views), the time the
    previous layout's publish of it takes (a copy, stamped and synced), and the README's example queries timed on
    that file and on the serving file of views over parquet (median of 3 each)."""
    import statistics

    from pipelines.summary import examples
    from pipelines.warehouse.lake import Warehouse, read_sql
    from pipelines.warehouse.serving import SERVING_STORAGE_VERSION, dependency_order, open_serving, view_body

    legacy = Path(args["lake"]).with_name("legacy-serving.duckdb")
    legacy.unlink(missing_ok=True)
    with Warehouse(args["lake"]).reader() as con:
        con.execute(f"attach '{legacy}' as old (storage_version '{SERVING_STORAGE_VERSION}')")
        con.execute("set memory_limit = '4GB'")
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'lake' and schema_name <> 'meta'"
        ).fetchall()
        views = con.execute(
            "select schema_name, view_name, sql from duckdb_views() where database_name = 'lake' and not internal"
        ).fetchall()
        for schema in {s for s, _ in tables} | {s for s, *_ in views}:
            con.execute(f"create schema if not exists old.{schema}")
        for schema, name in tables:
            con.execute(f"create table old.{schema}.{name} as select * from lake.{schema}.{name}")
        con.execute("use old")
        by_name = {f"{s}.{n}": (s, n, sql) for s, n, sql in views}  # each after the views its SQL names
        reads = lambda v: {o for o in by_name if o.lower() in v[2].lower()}  # noqa: E731
        for schema, name, sql in dependency_order(by_name, reads, "views"):
            con.execute(f"create view {schema}.{name} as {view_body(sql)}")
        con.execute("use lake")
        con.execute("detach old")
    copy = _previous_publish(legacy)
    queries = {
        "readme_cli": README_QUERY,
        # the closing summary's rows over the whole history (the command binds a run's months)
        "summary": read_sql("summary/rows")
        .replace("$first::timestamptz", "'-infinity'::timestamptz")
        .replace("$after::timestamptz", "'infinity'::timestamptz"),
        **{f"example_{i}": q for i, (_, q) in enumerate(examples())},
    }
    out: dict[str, float] = {"copy": copy, "legacy_gb": legacy.stat().st_size / 1e9}
    for label, path in (("views", Path(args["serving"])), ("file", legacy)):
        with open_serving(path) as con:
            for name, sql in queries.items():
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    con.execute(sql).fetchall()
                    times.append(time.perf_counter() - t)
                out[f"{label}:{name}"] = statistics.median(times)
    legacy.unlink()
    return out


def _previous_publish(source: Path) -> float:
    """Seconds of the previous layout's publish step on ``source``, as it ran (``publish_serving``
    before the DuckLake, commit 6217f5b^): copy the file, stamp ``meta.publication`` on the copy
    (opening, writing and closing it checkpoints, and DuckDB syncs the file it checkpoints: the
    copied bytes go to disk), rename it into place and sync the folder. The checkpoint of the
    warehouse before the copy is not counted (``source`` was just written and closed)."""
    import shutil

    serving = source.with_name("legacy-published.duckdb")
    tmp = source.with_name(".legacy-published.duckdb.tmp")
    t = time.perf_counter()
    shutil.copyfile(source, tmp)
    stamp = duckdb.connect(str(tmp))
    try:
        stamp.execute("create schema if not exists meta")
        stamp.execute(
            "create or replace table meta.publication as select now() as published_at, '{}'::json as row_counts"
        )
    finally:
        stamp.close()
    os.replace(tmp, serving)
    folder = os.open(serving.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    seconds = time.perf_counter() - t
    serving.unlink()
    return seconds


README_QUERY = """select ts, mark_price, index_price, mark_return_pct from marts.fct_price_interval
   where instrument_key = 'perpetual-BTC-USDT:USDT' and interval = '1d' order by ts desc limit 5"""


KAIKO_PATH = "/v2/data/derivatives.v2/price"


def kaiko_walk(args: dict[str, Any]) -> dict[str, float]:
    """What a user writes by hand: requests + json, follow next_url, columns to Arrow, one INSERT."""
    import pyarrow as pa
    import requests

    con = _db(args)
    t = time.perf_counter()
    ts, last, index, mark = [], [], [], []
    headers = {"X-Api-Key": args["kaiko_key"], "Accept": "application/json"}
    url: str | None = args["kaiko_url"] + KAIKO_PATH
    params: dict[str, Any] | None = _kaiko_params(args)
    with requests.Session() as s:
        while url:
            body = s.get(url, params=params, headers=headers, timeout=60).json()
            for row in body["data"]:
                ts.append(row["timestamp"])
                last.append(float(row["price"]) if row["price"] is not None else None)
                index.append(float(row["index_price"]) if row["index_price"] is not None else None)
                mark.append(float(row["mark_price"]) if row["mark_price"] is not None else None)
            url, params = body.get("next_url"), None
    table = pa.table(
        {"ts": pa.array(ts, pa.int64()), "last_price": last, "index_price": index, "mark_price": mark}
    )
    con.register("page_rows", table)
    con.execute(
        "create table prices as select make_timestamp(ts * 1000) as ts, * exclude (ts) from page_rows"
    )
    return {"load": time.perf_counter() - t, "rows": float(table.num_rows)}


def kaiko_markhouse(args: dict[str, Any]) -> dict[str, float]:
    """markhouse's Kaiko path for one instrument-month: paging, Arrow parse, pandera, atomic replace."""
    from pipelines.sources.kaiko.client import KaikoClient
    from pipelines.sources.kaiko.load import Series, load_months
    from pipelines.sources.kaiko.source import to_kaiko
    from pipelines.symbology import parse_symbol
    from pipelines.warehouse.lake import Warehouse

    _fresh_lake(args["lake"])
    warehouse = Warehouse(args["lake"])
    with warehouse.writer():  # the warehouse exists, as for every load but a first one: its
        pass  # creation (the catalog and every table, about 0.4 s) is not the instrument-month's
    key = "perpetual-BTC-USDT:USDT"
    series = Series("binance-futures", key, to_kaiko("binance-futures", parse_symbol(key)), "1m")
    t = time.perf_counter()
    report = load_months(
        KaikoClient(args["kaiko_url"], args["kaiko_key"]),
        warehouse,
        [series],
        [date.fromisoformat(args["kaiko_start"][:10])],
        progress=lambda _: None,
    )
    return {"load": time.perf_counter() - t, "rows": float(report.rows)}


def _kaiko_params(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "exchange": "bnce",
        "instrument_class": "perpetual-future",
        "instrument": "btcusdt",
        "interval": "1m",
        "page_size": 1000,
        "sort": "asc",
        "start_time": args["kaiko_start"],
        "end_time": args["kaiko_end"],
    }


def _kaiko_dlt(args: dict[str, Any], source: Callable[[], Any], **run: Any) -> dict[str, float]:
    """One dlt pipeline run (extract, normalize, load) of ``source()`` into a fresh DuckDB file at
    ``args["db"]``; dlt's working and data dirs live in a temp dir, telemetry off."""
    import shutil
    import tempfile

    work = tempfile.mkdtemp(prefix="markhouse-bench-dlt-")
    os.environ.update({"DLT_DATA_DIR": work, "RUNTIME__DLTHUB_TELEMETRY": "false"})
    import dlt

    Path(args["db"]).unlink(missing_ok=True)
    try:
        t = time.perf_counter()
        pipeline = dlt.pipeline(
            pipeline_name="kaiko_bench",
            pipelines_dir=work,
            destination=dlt.destinations.duckdb(args["db"]),
            dataset_name="dlt_kaiko",
        )
        pipeline.run(source(), **run)
        seconds = time.perf_counter() - t
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with duckdb.connect(args["db"], read_only=True) as con:
        row = con.execute("select count(*) from dlt_kaiko.prices").fetchone()
    return {"load": seconds, "rows": float(row[0] if row else 0)}


def _kaiko_rest_api(args: dict[str, Any]) -> Any:
    """dlt's declarative ``rest_api`` source: follow ``next_url``, rows under ``data``, one JSON item per
    row. The prices arrive as strings; column hints make them doubles (epoch-ms ``timestamp`` stays bigint)."""
    from dlt.sources.rest_api import rest_api_source

    return rest_api_source(
        {
            "client": {
                "base_url": args["kaiko_url"],
                "headers": {"X-Api-Key": args["kaiko_key"], "Accept": "application/json"},
            },
            "resources": [
                {
                    "name": "prices",
                    "write_disposition": "replace",
                    "columns": {c: {"data_type": "double"} for c in ("price", "index_price", "mark_price")},
                    "endpoint": {
                        "path": KAIKO_PATH,
                        "params": _kaiko_params(args),
                        "paginator": {"type": "json_link", "next_url_path": "next_url"},
                        "data_selector": "data",
                    },
                }
            ],
        },
        name="kaiko",
    )


def kaiko_dlt_default(args: dict[str, Any]) -> dict[str, float]:
    """dlt rest_api -> DuckDB, defaults: JSON items, the default loader file format (insert_values)."""
    return _kaiko_dlt(args, lambda: _kaiko_rest_api(args))


def kaiko_dlt_parquet(args: dict[str, Any]) -> dict[str, float]:
    """dlt rest_api -> DuckDB, JSON items normalized to parquet loader files."""
    return _kaiko_dlt(args, lambda: _kaiko_rest_api(args), loader_file_format="parquet")


def kaiko_dlt_arrow(args: dict[str, Any]) -> dict[str, float]:
    """dlt's arrow items: a resource pages with dlt's RESTClient (same paginator) and yields one
    pyarrow.Table per page (epoch ms -> UTC timestamp, price strings -> float64, in Arrow; microsecond
    timestamps, as DuckDB's TIMESTAMPTZ has no millisecond variant)."""
    import dlt
    import pyarrow as pa
    import pyarrow.compute as pc
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator

    def prices_column(page: list[dict[str, Any]], name: str) -> pa.Array:
        return pc.cast(pa.array([row[name] for row in page], pa.string()), pa.float64())

    @dlt.resource(name="prices", write_disposition="replace")
    def prices() -> Any:
        client = RESTClient(
            base_url=args["kaiko_url"],
            headers={"X-Api-Key": args["kaiko_key"], "Accept": "application/json"},
            paginator=JSONLinkPaginator(next_url_path="next_url"),
            data_selector="data",
        )
        for page in client.paginate(KAIKO_PATH, params=_kaiko_params(args)):
            ts = pa.array([row["timestamp"] for row in page], pa.int64())
            yield pa.table(
                {
                    "ts": ts.cast(pa.timestamp("ms", tz="UTC")).cast(pa.timestamp("us", tz="UTC")),
                    "last_price": prices_column(page, "price"),
                    "index_price": prices_column(page, "index_price"),
                    "mark_price": prices_column(page, "mark_price"),
                }
            )

    return _kaiko_dlt(args, prices)


PATHS: dict[str, Callable[[dict[str, Any]], dict[str, float]]] = {
    f.__name__: f
    for f in (
        limit,
        per_month_tx,
        http_then_load,
        client_polars,
        client_pandas,
        markhouse,
        marts_one_month,
        floor,
        limit_lake,
        serving_queries,
        kaiko_walk,
        kaiko_markhouse,
        kaiko_dlt_default,
        kaiko_dlt_parquet,
        kaiko_dlt_arrow,
    )
}

if __name__ == "__main__":
    result = PATHS[sys.argv[1]](json.loads(sys.argv[2]))
    # peak RSS of this process and of any child it waited for (the markhouse CLI), in MB
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(json.dumps({**result, "_rss_mb": peak / 1024}))
