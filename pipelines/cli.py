"""The ``markhouse`` command: the daily work without opening the Dagster UI.

``backfill`` runs the UI's Dagster job as one run for the month range, on the instance ``make dev``
shows (``instance_home``); Dagster (1.5 s to import) is imported only once a request passed every check.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import socket
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pipelines import sources
from pipelines.errors import Diagnosis, ExitCode, RequestError, diagnose
from pipelines.models import refresh_marts
from pipelines.months import Month, parse_month, partition_key
from pipelines.progress import log as progress_log
from pipelines.progress import terminal_progress
from pipelines.redaction import redact
from pipelines.settings import MAX_AGE_HOURS, REPO_ROOT, Settings, unguarded
from pipelines.sources.source import VENDOR_TAG
from pipelines.status import all_vendors_embedded, build_report, judgement_time, print_report, report_json
from pipelines.summary import print_summary
from pipelines.universe import Universe, load_universe
from pipelines.warehouse.concurrency import killed_holder
from pipelines.warehouse.integrity import backup, drop_damaged, verify
from pipelines.warehouse.lake import NothingPublishedError, Warehouse, WarehouseCorruptError, loaded_months
from pipelines.warehouse.legacy import import_legacy
from pipelines.warehouse.maintenance import maintain, time_travel_note
from pipelines.warehouse.serving import publish_serving, serve_current

if TYPE_CHECKING:
    from dagster import DagsterInstance


def _typed(parse: Callable[[str], Any], expected: str) -> Callable[[str], Any]:
    """An argparse type whose error says what it expected."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    return convert


_month = _typed(parse_month, "YYYY-MM")
_utc = _typed(  # a time without a zone is UTC
    lambda t: (v := datetime.fromisoformat(t)).replace(tzinfo=v.tzinfo or UTC),
    "an ISO time like 2026-05-17T06:00",
)


def _err(line: str) -> None:
    print(line, file=sys.stderr)


_say = progress_log.info  # a line on the terminal, through the progress handler (its heartbeat counts it)


def instance_home() -> Path:
    """``$DAGSTER_HOME``, else the checkout's ``.dagster_home/``: the one ``make dev`` runs on."""
    home = unguarded(Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / ".dagster_home"))
    home.mkdir(parents=True, exist_ok=True)
    return home


def _writable(path: Path, variable: str) -> None:
    """Refuse before the run when the warehouse or serving copy cannot be written where it lives."""
    parent = path.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RequestError(
            f"cannot create {parent} for {path} ({variable}): {exc.strerror}", ExitCode.WAREHOUSE
        ) from None
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK) or (path.exists() and not os.access(parent, os.W_OK)):
        raise RequestError(f"{target} is not writable ({variable}={path})", ExitCode.WAREHOUSE)


def cmd_backfill(args: argparse.Namespace) -> int:
    """The backfill, with progress on stderr from its first second to its last line."""
    with terminal_progress(sys.stderr):
        return _backfill(args)


def _backfill(args: argparse.Namespace) -> int:
    if args.end < args.start:
        raise RequestError(f"--end {args.end:%Y-%m} is before --start {args.start:%Y-%m}", ExitCode.USAGE)
    settings = Settings.from_env()
    universe = load_universe(settings.universe_path)
    latest = datetime.now(UTC).date().replace(day=1)  # the partitions run to the current month
    if args.start < universe.start_month or args.end > latest:
        raise RequestError(
            f"months must lie within {universe.start_month:%Y-%m} .. {latest:%Y-%m} (start_month in {universe.path})",
            ExitCode.USAGE,
        )
    plan = plan_backfill(universe, args.vendor, args.instrument or [])
    if args.table:  # what a retry of failed units names
        source = sources.get(args.vendor) if args.vendor else None
        tables = [r.table for r in source.raw_assets(universe.section(source.name))] if source else []
        if not set(args.table) <= set(tables):
            raise RequestError(
                f"--table takes a raw table of --vendor: {', '.join(tables) or 'none named'}", ExitCode.USAGE
            )
    _writable(settings.warehouse_path, "MARKHOUSE_WAREHOUSE")
    Warehouse(settings.warehouse_path).check_layout()  # a previous layout's stops every command
    _writable(settings.serving_path, "MARKHOUSE_SERVING")
    loads = ", ".join(f"{v} ({len(keys) or 'every'} instrument(s))" for v, keys in plan.items())
    _say(f"markhouse: backfill {args.start:%Y-%m}..{args.end:%Y-%m} of {loads}: starting")

    import dagster as dg

    from pipelines.resources import settle_killed_run

    run_id = str(uuid.uuid4())
    holder = f"run {run_id[:8]} (markhouse backfill, pid {os.getpid()} on {socket.gethostname()})"
    warehouse = Warehouse(settings.warehouse_path)
    # the whole run holds the warehouse: its steps share this process's writer (pipelines.warehouse.concurrency)
    with (
        warehouse.writer(wait_seconds=args.wait, holder=holder, run_id=run_id, on_wait=_say) as con,
        dg.DagsterInstance.from_config(str(instance_home())) as instance,
    ):
        settle_killed_run(instance, killed_holder(warehouse.lock_path), _say)
        interrupted = True
        try:
            result = _run_backfill(instance, run_id, args, plan)
            error = None if result.success else _first_error(result)
            interrupted = error is not None and diagnose(error).code is ExitCode.INTERRUPTED
            # a catalog query (about 10 ms): whether replaced files outweigh the data
            note = (
                time_travel_note(con, timedelta(hours=settings.retention_hours)) if result.success else None
            )
        finally:  # a run stopped with Ctrl-C is CANCELED, as the UI's terminate leaves it, not FAILURE
            if interrupted and (run := instance.get_run_by_id(run_id)) is not None:
                instance.report_run_canceled(run, "interrupted (Ctrl-C) in markhouse backfill")
    summary = run_summary(result)
    if result.success:
        _print_verdicts(result.get_asset_check_evaluations())
        print_summary(  # the example queries on the demo's `--report` (and `markhouse summary`)
            settings.serving_path,
            emulator=all_vendors_embedded(),
            months=(args.start, args.end),
            only=plan,
            queries=args.report,
        )
    if result.success and args.report:  # after the result: the pictures never hold it up
        from pipelines.marts import draw_report

        _say("markhouse: drawing the report")
        if (drawn := draw_report(settings.serving_path, _say)) is not None:
            summary["report"] = str(drawn.html_path)
            print(f"\nreport (open in a browser; the charts are beside it as PNGs): {drawn.html_path}")
    if args.summary_json:
        args.summary_json.parent.mkdir(parents=True, exist_ok=True)
        args.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    if not result.success:
        return _failed(result, error, args.debug)
    built = (  # with a PostgreSQL catalog no catalog file is made: name the lake, password hidden
        settings.warehouse_path
        if warehouse.catalog is None
        else f"the lake on {redact(warehouse.catalog)} (data files in {warehouse.data_location})"
    )
    print(
        f"\ndone: the marts (schema marts) are built in {built} and published to "
        f"{settings.serving_path}; next: `markhouse status` for coverage and freshness, "
        f"{'' if args.report else '`markhouse report` for charts, '}"
        '`make dev` for the Dagster UI (this run is in its history), README "Querying" for BI tools'
    )
    if note:
        print(note)
    return ExitCode.OK


def _first_error(result: Any) -> Any:
    """The first step failure's SerializableErrorInfo, else the run failure's; None if neither."""
    if failures := result.get_step_failure_events():
        return failures[0].step_failure_data.error
    failure = result.get_run_failure_event()
    return getattr(failure.event_specific_data, "error", None) if failure else None


def _failed(result: Any, error: Any, debug: bool) -> int:
    """A failed run in one line and its exit code; or each unit that failed while the rest loaded,
    and the backfills that retry exactly them."""
    from pipelines.sources.assets import run_outcome, unit_line

    mats = (e.step_materialization_data.materialization for e in result.get_asset_materialization_events())
    failed, _ = run_outcome(mats)
    if failed and all(e.step_key == "marts" for e in result.get_step_failure_events()):
        first = failed[0]
        if not any(e.asset_key.path[0] == "marts" for e in result.get_asset_materialization_events()):
            _err(Diagnosis(ExitCode(first["code"]), first["cause"], first["hint"]).line())
            return first["code"]  # nothing loaded: nothing published, as a run of one failure
        for f in failed:
            _err(Diagnosis(ExitCode(f["code"]), unit_line(f), f["hint"]).line())
        _err(f"markhouse: {len(failed)} unit(s) failed; the marts of what loaded are published")
        for command in retry_commands(failed):
            _err(f"markhouse: to load only what failed: {command}")
        return first["code"]
    if error is None:
        _err("markhouse: the backfill failed -> run again with --debug for the details")
        return ExitCode.PROBLEMS
    diagnosis = diagnose(error)
    _err(diagnosis.line() + (f"\n{error.to_string()}" if debug else ""))
    return diagnosis.code


def retry_commands(failed: Sequence[dict[str, Any]]) -> list[str]:
    """The backfills that load exactly the failed units: per vendor, the instruments that failed
    in the same months (none named: every one), for each run of consecutive months, with the tables."""
    per_table: dict[tuple[str, str], dict[str, set[str]]] = {}  # (vendor, table) -> key -> months
    for f in failed:
        for key in f["instruments"] or [""]:
            per_table.setdefault((f["vendor"], f["table"]), {}).setdefault(key, set()).update(f["months"])
    commands: dict[tuple[str, tuple[str, ...], Month, Month], list[str]] = {}
    for (vendor, table), keys in per_table.items():
        if "" in keys:  # every instrument: the ones named are in it
            keys = {"": set().union(*keys.values())}
        groups: dict[frozenset[str], list[str]] = {}
        for key, months in keys.items():
            groups.setdefault(frozenset(months), []).append(key)
        for shared, group in groups.items():
            ordered = sorted(parse_month(m) for m in shared)
            # a run of consecutive months: each as far from its place in the list as the first
            for _, run in groupby(enumerate(ordered), lambda p: p[1].year * 12 + p[1].month - p[0]):
                span = [m for _, m in run]
                commands.setdefault((vendor, tuple(sorted(group)), span[0], span[-1]), []).append(table)
    return [
        f"markhouse backfill --start {start:%Y-%m} --end {end:%Y-%m} --vendor {vendor}"
        + "".join(f" --table {t}" for t in sorted(tables))
        + "".join(f" --instrument {k}" for k in keys if k)
        for (vendor, keys, start, end), tables in commands.items()
    ]


def _carries(universe: Universe, vendor: str, key: str) -> bool:
    return sources.get(vendor).serves(universe.section(vendor), universe.start_month, key)


def plan_backfill(universe: Universe, vendor: str | None, instruments: list[str]) -> dict[str, list[str]]:
    """Vendor -> the Atlas keys to load from it (none: all it is configured for). A request that can
    only load nothing is refused with what to change (it would publish the same marts again)."""
    present = [v for v in sources.names() if universe.section(v)]
    if not present:
        raise RequestError(
            f"{universe.path} lists no instruments: it has no {', '.join(sources.names())} section; "
            "add one (see pipelines/universe/demo.yaml)"
        )
    if vendor and vendor not in present:
        raise RequestError(
            f"{universe.path} has no {vendor} section, so --vendor {vendor} would load nothing; "
            f"it configures {', '.join(present)}"
        )
    chosen = [vendor] if vendor else present
    if not instruments:
        return {v: [] for v in chosen}
    plan = {v: keys for v in chosen if (keys := [k for k in instruments if _carries(universe, v, k)])}
    for key in instruments:
        if not any(key in keys for keys in plan.values()):
            others = [v for v in present if v not in chosen and _carries(universe, v, key)]
            who = (
                f"none of {', '.join(chosen)} carries it" if chosen[1:] else f"{chosen[0]} does not carry it"
            )
            where = f"; {' and '.join(others)} {'does' if len(others) == 1 else 'do'}" if others else ""
            # the Atlas keys the universe lists (a source listing coins lists none)
            choices = sorted(
                {i.instrument_key for v in chosen for i in sources.get(v).instruments(universe.section(v))}
            )
            listed = f" (listed: {', '.join(choices)})" if choices else ""
            raise RequestError(f"--instrument {key}: {who} in {universe.path}{listed}{where}")
    return plan


def _run_backfill(
    instance: DagsterInstance, run_id: str, args: argparse.Namespace, plan: dict[str, list[str]]
) -> Any:
    """The backfill's one Dagster run, in this process (recorded in ``instance`` like any run): the
    planned vendors' sources (of --table only, if given) and the marts; the report is drawn after."""
    from pipelines.definitions import defs
    from pipelines.partitions import RANGE_END, RANGE_START
    from pipelines.resources import COMMAND_TAG

    graph, job = defs.resolve_asset_graph(), defs.resolve_job_def("refresh")
    # a source asset's vendor by the tag every one carries, not by its name
    vendors = {key: graph.get(key).tags.get(VENDOR_TAG) for key in job.asset_layer.selected_asset_keys}
    tables = {f"{args.vendor}_{t}" for t in args.table or ()}
    selection = sorted(
        key
        for key, vendor in vendors.items()
        if (vendor is None or (vendor in plan and (not tables or key.path[-1] in tables)))
        and key.path != ["report"]
    )
    run_config = {  # without --debug, markhouse prints its own lines, not Dagster's log
        "loggers": {"console": {"config": {"log_level": "INFO" if args.debug else "CRITICAL"}}},
        "ops": {
            "__".join(key.path): {"config": {"instruments": plan[vendor]}}
            for key in selection
            if (vendor := vendors[key]) and plan[vendor]
        },
    }
    _say("markhouse: definitions loaded; running the job")
    # one "planned" event per asset, not one per asset and month (Dagster's SQLite event log
    # stores each, about 10 ms apiece: 480 of them at 48 months); the price: a failed run's
    # partitions are not marked failed in the UI (the run is)
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    range_tags = {RANGE_START: partition_key(args.start), RANGE_END: partition_key(args.end)}
    return job.execute_in_process(
        run_config=run_config,
        instance=instance,
        run_id=run_id,
        raise_on_error=False,
        tags={**range_tags, COMMAND_TAG: "backfill"},
        asset_selection=selection,
    )


_RUN_FIGURES = ("rows", "seconds", "publish_seconds")


def run_summary(result: Any) -> dict[str, Any]:
    """A backfill run as data for benchmarks and scripts: rows and seconds per asset, and the phases."""
    assets: dict[str, dict[str, float]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        figures = ((k, v.value) for k, v in mat.metadata.items() if k in _RUN_FIGURES)
        assets[mat.asset_key.to_user_string()] = {k: v for k, v in figures if isinstance(v, int | float)}
    marts = assets.get("marts/fct_price_interval", {})
    return {
        "report": None,  # the report's path, when the command drew one after the run
        "ok": bool(result.success),
        "assets": assets,
        "phases": {
            "load": round(sum(a.get("seconds", 0.0) for k, a in assets.items() if k.startswith("raw/")), 3),
            "marts": marts.get("seconds", 0.0),
            "publish": marts.get("publish_seconds", 0.0),
        },
        "rows": {k: a["rows"] for k, a in assets.items() if k.startswith("raw/") and "rows" in a},
    }


def _print_verdicts(evaluations: Sequence[Any]) -> None:
    for e in evaluations:
        verdict = "passed" if e.passed else f"FAILED ({e.severity.value.lower()})"
        count = e.metadata.get("count")
        detail = f": {count.value} problem(s), see `markhouse status`" if count and not e.passed else ""
        print(f"check {e.asset_key.to_user_string()} {e.check_name}: {verdict}{detail}")
    if evaluations and all_vendors_embedded():
        print(
            f"(freshness judged as of {judgement_time():%Y-%m-%d %H:%M} UTC, the embedded emulator's clock: "
            "its real data ends then)"
        )


def _serving_copy() -> Settings:
    """Settings, with the serving file written again from the published snapshot if the warehouse moved."""
    settings = Settings.from_env()
    Warehouse(settings.warehouse_path).check_layout()
    try:
        if serve_current(Warehouse(settings.warehouse_path), settings.serving_path):
            _err(f"markhouse: wrote {settings.serving_path} for this warehouse's folder")
    except NothingPublishedError:
        raise RequestError(
            f"no serving copy at {settings.serving_path} yet (MARKHOUSE_SERVING); run `markhouse backfill` first",
            ExitCode.WAREHOUSE,
        ) from None
    return settings


def _warehouse() -> Warehouse:
    return Warehouse(Settings.from_env().warehouse_path)


def cmd_verify(args: argparse.Namespace) -> int:
    result = verify(_warehouse(), full=args.full)
    for damaged in result.damaged:
        print(f"damaged: {damaged.line()}")
    snapshots = f"snapshot {result.published} (published) and {result.latest} (latest)"
    if result.damaged:
        raise RequestError(
            f"{len(result.damaged)} of {result.files} files of {snapshots} are damaged; `markhouse repair` "
            "reloads their months",
            ExitCode.WAREHOUSE,
        )
    print(f"verified {result.files} files of {snapshots}: each present, of its recorded size, readable")
    return ExitCode.OK


def cmd_repair(args: argparse.Namespace) -> int:
    """Take the damaged files' months out of the latest snapshot (one commit), load the raw months
    again from their vendor (the backfill's run, which rebuilds their marts), rebuild the other
    damaged marts months, publish."""
    settings = Settings.from_env()
    warehouse = Warehouse(settings.warehouse_path)
    with warehouse.writer(wait_seconds=args.wait) as con:
        damaged = drop_damaged(con, warehouse)
    for d in damaged:
        print(f"removed the month of the damaged file {d.line()}")
    owner = {table: s.name for s in sources.sources() for table in s.raw_tables()}
    reload: dict[str, set[str]] = {}
    for d in damaged:
        for vendor in [owner[d.table]] if d.table in owner else sources.names():
            if d.table.startswith("raw.") and d.month:
                reload.setdefault(vendor, set()).add(d.month)
    for vendor, months in sorted(reload.items()):
        # through the parser: the command line's own defaults for every other option
        request = f"--start={min(months)} --end={max(months)} --vendor={vendor} --wait={args.wait}".split()
        code = _backfill(build_parser().parse_args([*["--debug"] * args.debug, "backfill", *request]))
        if code != ExitCode.OK:
            return code
    marts = sorted({parse_month(d.month) for d in damaged if d.table.startswith("marts.") and d.month})
    if damaged or verify(warehouse).damaged:  # also a published snapshot a finished repair left behind
        with warehouse.writer(wait_seconds=args.wait) as con:
            refresh_marts(con, marts, {"mark_last_gap_threshold_bps": settings.mark_last_gap_bps})
            published = publish_serving(con, settings.serving_path)
        print(f"repaired: published snapshot {published.snapshot}")
    else:
        print("nothing to repair: every file of the published and the latest snapshot is sound")
    return ExitCode.OK


def cmd_backup(args: argparse.Namespace) -> int:
    if args.dest.exists():
        raise RequestError(f"{args.dest} exists; name a new folder", ExitCode.USAGE)
    published, files = backup(_warehouse(), args.dest)
    print(f"backed up the published snapshot {published} ({files} files) to {args.dest}")
    return ExitCode.OK


def cmd_import_duckdb(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    warehouse = Warehouse(settings.warehouse_path)
    legacy = args.path or warehouse.legacy_path
    if not Path(legacy).exists():
        raise RequestError(
            f"no previous-layout warehouse at {legacy}: nothing to import (`markhouse import-duckdb PATH` names another file)",
            ExitCode.CONFIG,
        )
    for table, rows in import_legacy(warehouse, legacy).items():
        print(f"imported {rows:>10,} rows into {table}")
    with warehouse.writer() as con:
        months = loaded_months(con)
        result = refresh_marts(con, months, {"mark_last_gap_threshold_bps": settings.mark_last_gap_bps})
        published = publish_serving(con, settings.serving_path)
    print(
        f"rebuilt {result.rows:,} mart rows for {len(months)} months; published snapshot {published.snapshot} "
        f"({published.path}); the old file is now {legacy}.imported"
    )
    return ExitCode.OK


def cmd_maintain(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    hours = args.retention_hours if args.retention_hours is not None else settings.retention_hours
    result = maintain(Warehouse(settings.warehouse_path), settings.serving_path, timedelta(hours=hours))
    print(
        f"maintenance: {'merged small files, ' if result.merged else 'no merge (unpublished commits), '}"
        f"expired {result.expired} snapshots, deleted {result.deleted_files} files; data "
        f"{result.bytes_before / 2**20:,.1f} MiB -> {result.bytes_after / 2**20:,.1f} MiB in {result.seconds:.1f}s"
    )
    return ExitCode.OK


def cmd_snapshots(args: argparse.Namespace) -> int:
    snapshots = _warehouse().snapshots()
    print(f"{'snapshot':>8}  {'time (UTC)':<19}  published")
    shown = snapshots if args.all else snapshots[-args.last :] if args.last > 0 else []
    for s in shown:
        print(
            f"{s.snapshot_id:>8}  {s.snapshot_time.astimezone(UTC):%Y-%m-%d %H:%M:%S}  {'yes' if s.published else ''}"
        )
    if len(shown) < len(snapshots):
        print(f"(the newest {len(shown)} of {len(snapshots)}; --limit N or --all for more)")
    return ExitCode.OK


def cmd_query(args: argparse.Namespace) -> int:
    try:
        with _warehouse().reader(snapshot=args.snapshot) as con:
            if args.out:
                out = args.out.resolve()  # relative to the working folder, said in full
                fmt = "csv" if out.suffix == ".csv" else "parquet"
                con.execute(f"copy ({args.sql}) to '{str(out).replace(chr(39), chr(39) * 2)}' (format {fmt})")
                print(f"wrote {out}")
                return ExitCode.OK
            cur = con.execute(args.sql)
            print("\t".join(d[0] for d in cur.description))
            for row in cur.fetchall():
                print("\t".join("" if v is None else str(v) for v in row))
    except duckdb.Error as exc:
        if (named := _named_damage(exc)) is not exc:
            raise named from None
        raise RequestError(f"query failed: {exc}", ExitCode.USAGE) from None
    return ExitCode.OK


def _named_damage(exc: BaseException) -> BaseException:
    """A read that failed for another reason than its SQL may have met a damaged data file that
    DuckDB's error does not name (a garbled page says "Invalid data" or worse): verify names it."""
    mistakes = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)
    if not (isinstance(exc, duckdb.Error) or getattr(exc, "unnamed", False)) or isinstance(exc, mistakes):
        return exc
    warehouse = _warehouse()
    try:  # footers first, then every page
        found = verify(warehouse).damaged or verify(warehouse, full=True).damaged
    except Exception:
        return exc
    return WarehouseCorruptError(f"{found[0].line()}; `markhouse repair` reloads its month") if found else exc


def cmd_status(args: argparse.Namespace) -> int:
    settings = _serving_copy()
    report = build_report(
        settings.serving_path,
        as_of=args.as_of or judgement_time(),
        max_age_hours=args.max_age_hours if args.max_age_hours is not None else settings.max_age_hours,
        missing_tolerance=args.missing_tolerance,
    )
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print_report(report)
        if args.as_of is None and all_vendors_embedded():
            print(
                "(judged as of the embedded emulator's clock, where its real data ends; "
                "pass --as-of to judge another time)"
            )
    return ExitCode.OK if report.ok else ExitCode.PROBLEMS


def cmd_summary(args: argparse.Namespace) -> int:
    print_summary(_serving_copy().serving_path, emulator=all_vendors_embedded())
    return ExitCode.OK


def cmd_report(args: argparse.Namespace) -> int:
    from pipelines.report import write_report

    serving, days = _serving_copy().serving_path, {"start": args.start, "end": args.end}
    report = write_report(serving, args.output, **days, instruments=args.instrument, interval=args.interval)
    print(f"report ({report.data.range.start} .. {report.data.range.end}): {report.html_path}")
    print(f"charts: {', '.join(str(p) for p in report.png_paths.values())}")
    return ExitCode.OK


def cmd_emulator(args: argparse.Namespace) -> int:
    from pipelines.emulator.server import serve_forever

    serve_forever(host=args.host, port=args.port, **({"today": args.today} if args.today else {}))
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="markhouse",
        description=(__doc__ or "").splitlines()[0],
        epilog=(
            "exit codes: 0 ok; 1 status found problems (or an unexpected failure); 2 usage; "
            "3 bad configuration or a request that can only produce nothing; 4 vendor or network; "
            "5 warehouse; 130 interrupted"
        ),
    )
    parser.add_argument("--version", action="version", version=f"markhouse {version('markhouse')}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and Dagster's own log")
    sub = parser.add_subparsers(dest="command", required=True)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    def command(func: Callable[[argparse.Namespace], int], help_text: str) -> Callable[..., Any]:
        """The subcommand ``cmd_<name>`` runs; returns its ``add_argument``."""
        p = sub.add_parser(func.__name__[4:].replace("_", "-"), parents=[debug], help=help_text)
        p.set_defaults(func=func)
        return p.add_argument

    add = command(cmd_backfill, "load a month range from the vendors and rebuild the marts (one run)")
    add("--start", type=_month, required=True, help="first month, YYYY-MM")
    add("--end", type=_month, required=True, help="last month, YYYY-MM (inclusive)")
    add("--vendor", choices=sources.names(), help="only this vendor (default: all in the universe)")
    add("--instrument", action="append", help="only this Atlas key (repeatable)")
    add(
        "--table",
        action="append",
        help="with --vendor: only this raw table of it (e.g. funding, raw/aperiodic_funding; repeatable)",
    )
    add(
        "--report",
        action="store_true",
        help="then print the example queries and draw the report (as `markhouse summary` and `markhouse report` do), after the result",
    )
    add(
        "--summary-json",
        type=Path,
        metavar="PATH",
        help="also write the run as JSON (rows and seconds per asset, load/marts/publish phases) to PATH",
    )
    add(
        "--wait",
        type=float,
        default=float(os.environ.get("MARKHOUSE_WRITER_WAIT_SECONDS", "3600")),
        metavar="SECONDS",
        help="how long to wait for another run writing the warehouse (default MARKHOUSE_WRITER_WAIT_SECONDS or 3600)",
    )

    add = command(cmd_status, "coverage and freshness per vendor x instrument x month; exit 1 if not")
    add(
        "--max-age-hours",
        type=float,
        help=f"freshness bound (default MARKHOUSE_MAX_AGE_HOURS or {MAX_AGE_HOURS:g})",
    )
    add("--missing-tolerance", type=int, default=0, help="missing intervals allowed per past month")
    add(
        "--as-of",
        type=_utc,
        help="judge as of this UTC time (default now; the emulator's clock when it is the only source)",
    )
    add("--json", action="store_true", help="the report as JSON (for monitors)")

    add = command(cmd_emulator, "run the local vendor emulator in the foreground")
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8765)
    add("--today", type=date.fromisoformat, default=None, help="emulator's today (daily cut-over)")

    command(cmd_summary, "rows per instrument and month, and example queries (serving copy)")

    add = command(cmd_report, "the marts as charts: one self-contained HTML page and PNGs (serving copy)")
    add("--start", type=date.fromisoformat, help="first day, YYYY-MM-DD (default: 180 days back)")
    add("--end", type=date.fromisoformat, help="last day, YYYY-MM-DD (default: the newest data)")
    add("--instrument", action="append", help="only this Atlas key (repeatable)")
    add("--interval", default="1h", help="interval of the gap and divergence charts (default 1h)")
    add(
        "--output",
        type=Path,
        help="HTML file to write; the PNGs go beside it (default: report/markhouse-report.html "
        "beside the serving copy)",
    )

    add = command(
        cmd_query, "run SQL on the published snapshot (or --snapshot N: time travel); --out exports it"
    )
    add("sql", help="a SELECT over raw.*, ref.*, marts.*")
    add("--snapshot", type=int, help="an earlier snapshot id (see `markhouse snapshots`)")
    add(
        "--out",
        type=Path,
        help="write the result to this .parquet or .csv file instead of printing it (a relative path is "
        "relative to the folder the command runs in, not to the warehouse)",
    )

    add = command(cmd_snapshots, "the warehouse's snapshots, and which ones a run published")
    add("--last", "--limit", type=int, default=20, help="how many of the newest to show")
    add("--all", action="store_true", help="every snapshot")

    add = command(
        cmd_maintain,
        "merge small files, expire old snapshots (keeping the published one), delete unused files",
    )
    add(
        "--retention-hours",
        type=float,
        help="keep snapshots this recent (default MARKHOUSE_RETENTION_HOURS or 168)",
    )

    add = command(
        cmd_verify, "check every file of the published and latest snapshot; exit 5 naming the damaged"
    )
    add("--full", action="store_true", help="also read every page (a scan), not only the footers")

    add = command(
        cmd_repair, "reload the months of damaged files (from the vendor, or rebuild the marts), publish"
    )
    add("--wait", type=float, default=3600.0, metavar="SECONDS", help="wait for another writer")

    add = command(
        cmd_backup, "copy the published snapshot (catalog and files) to a new folder, while runs write"
    )
    add("dest", type=Path, help="a folder that does not exist yet")

    add = command(
        cmd_import_duckdb, "import a warehouse file of the previous layout (warehouse/markhouse.duckdb) once"
    )
    add("path", nargs="?", type=Path, help="the old file (default: beside MARKHOUSE_WAREHOUSE)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Every command's one error path: a refused request, Ctrl-C or a failure is one line and its code."""
    args = build_parser().parse_args(argv)
    if args.debug:  # markhouse's own info lines too (commit retries, HTTP retries), on stderr
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        return int(args.func(args))
    except RequestError as exc:
        _err(f"markhouse: {exc}")
        return exc.code
    except (Exception, KeyboardInterrupt) as exc:  # Ctrl-C is one line even with --debug
        if args.debug and not isinstance(exc, KeyboardInterrupt):
            raise
        diagnosis = diagnose(_named_damage(exc))
        _err(diagnosis.line())
        return diagnosis.code


def run() -> None:
    """The ``markhouse`` command: ``main``, then an exit that skips collecting the run's objects one by
    one (Dagster's graph: 0.8 s of a one-month refresh after its last line), as the process ends anyway."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
