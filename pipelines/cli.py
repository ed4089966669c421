"""The ``markhouse`` command: the daily work without opening the Dagster UI.

``backfill`` launches the same Dagster job as the UI, as one run for the whole month range, on the
instance in ``$DAGSTER_HOME`` (default ``.dagster_home/`` with this repo's ``dagster.yaml``), so
the run shows up in ``dagster dev`` afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.emulator.server import DEFAULT_TODAY as EMULATOR_TODAY
from pipelines.settings import REPO_ROOT, Settings

if TYPE_CHECKING:
    from dagster import DagsterInstance


def _month(text: str) -> date:
    try:
        year, month = text.split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM, got {text!r}") from None


def _instance() -> DagsterInstance:
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    home = REPO_ROOT / ".dagster_home"
    home.mkdir(exist_ok=True)
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(REPO_ROOT)))


def cmd_backfill(args: argparse.Namespace) -> int:
    from pipelines.report import default_report_path
    from pipelines.summary import print_summary

    if args.end < args.start:
        print(f"markhouse: --end {args.end:%Y-%m} is before --start {args.start:%Y-%m}", file=sys.stderr)
        return 2
    from pipelines.storage import LegacyWarehouseError, Warehouse

    try:
        Warehouse(Settings.from_env().warehouse_path).check_layout()
    except LegacyWarehouseError as exc:
        print(f"markhouse: {exc}", file=sys.stderr)
        return 2
    from pipelines.definitions import defs, partitions, universe

    keys = partitions.get_partition_keys()
    start_key, end_key = f"{args.start:%Y-%m-%d}", f"{args.end:%Y-%m-%d}"
    if start_key not in keys or end_key not in keys:
        print(
            f"markhouse: months must lie within {keys[0][:7]} .. {keys[-1][:7]} "
            f"(start_month in {universe.path})",
            file=sys.stderr,
        )
        return 2
    graph = defs.resolve_asset_graph()
    job = defs.resolve_job_def("refresh")
    if args.vendor:  # that vendor's sources, the marts and their checks
        job = job.get_subset(
            asset_selection={
                key
                for key in graph.get_all_asset_keys()
                if key.path[0] == "marts" or key.path[-1].startswith(f"{args.vendor}_")
            },
            asset_check_selection=set(graph.asset_check_keys),
        )
    selection = [key for key in graph.get_all_asset_keys() if key in job.asset_layer.selected_asset_keys]
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    if args.instrument:
        # every source asset takes `instruments` (Atlas keys) in its run config
        run_config["ops"] = {
            "__".join(key.path): {"config": {"instruments": args.instrument}}
            for key in selection
            if key.path[0] == "raw"
        }
    from pipelines.writer_slot import WriterSlotTimeout, process_tags, wait_for_slot

    with _instance() as instance:
        try:  # no daemon here: free a killed run's writer slot, or wait visibly for a live one
            wait_for_slot(instance, _say, timeout_seconds=args.wait)
        except WriterSlotTimeout as exc:
            print(f"markhouse: {exc}", file=sys.stderr)
            return 1
        result = job.execute_in_process(
            instance=instance,
            run_config=run_config,
            tags={
                "dagster/asset_partition_range_start": start_key,
                "dagster/asset_partition_range_end": end_key,
                "markhouse/command": "backfill",
                **process_tags(),
            },
            raise_on_error=False,
        )
    if not result.success:
        print("markhouse: backfill failed; see the error above", file=sys.stderr)
        return 1
    for evaluation in result.get_asset_check_evaluations():
        verdict = "passed" if evaluation.passed else f"FAILED ({evaluation.severity.value.lower()})"
        count = evaluation.metadata.get("count")
        detail = (
            f": {count.value} problem(s), see `markhouse status`" if count and not evaluation.passed else ""
        )
        print(f"check {evaluation.asset_key.to_user_string()} {evaluation.check_name}: {verdict}{detail}")
    if _embedded_emulator_used() and not all(e.passed for e in result.get_asset_check_evaluations()):
        print(
            f"(the embedded emulator's data ends {EMULATOR_TODAY - timedelta(days=1):%Y-%m-%d}, so checks against "
            f"today's clock see it as stale; `markhouse status --as-of {EMULATOR_TODAY:%Y-%m-%d}T06:00` judges it "
            "as of the emulator's today)"
        )
    settings = Settings.from_env()
    print_summary(settings.serving_path)
    report = default_report_path(settings.serving_path)
    if report.exists():
        print(f"\nreport (open in a browser; the charts are beside it as PNGs): {report}")
    return 0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _embedded_emulator_used() -> bool:
    """No vendor was given a base URL or a key: everything came from the local emulator."""
    return not any(
        os.environ.get(f"{vendor}_{what}")
        for vendor in ("APERIODIC", "KAIKO", "CAYOLARGO")
        for what in ("BASE_URL", "API_KEY")
    )


def _has_serving_copy(settings: Settings) -> bool:
    from pipelines.storage import LegacyWarehouseError, Warehouse

    try:
        Warehouse(settings.warehouse_path).check_layout()
    except LegacyWarehouseError as exc:
        print(f"markhouse: {exc}", file=sys.stderr)
        return False
    if settings.serving_path.exists():
        return True
    print(f"markhouse: no serving copy at {settings.serving_path} yet; run a backfill first", file=sys.stderr)
    return False


def cmd_import_duckdb(args: argparse.Namespace) -> int:
    """Import a previous-layout warehouse file once: raw and reference rows copied, marts rebuilt
    by the current SQL, the result published."""
    from pipelines.models import refresh_marts
    from pipelines.storage import (
        LegacyWarehouseError,
        Warehouse,
        import_legacy,
        loaded_months,
        publish_serving,
    )

    settings = Settings.from_env()
    warehouse = Warehouse(settings.warehouse_path)
    legacy = args.path or warehouse.legacy_path
    try:
        copied = import_legacy(warehouse, legacy)
    except LegacyWarehouseError as exc:
        print(f"markhouse: {exc}", file=sys.stderr)
        return 2
    for table, rows in copied.items():
        print(f"imported {rows:>10,} rows into {table}")
    with warehouse.writer() as con:
        months = loaded_months(con)
        result = refresh_marts(con, months, {"mark_last_gap_threshold_bps": settings.mark_last_gap_bps})
        published = publish_serving(con, settings.serving_path)
    print(
        f"rebuilt {result.rows:,} mart rows for {len(months)} months; published snapshot {published.snapshot} "
        f"({published.path}); the old file is now {legacy}.imported"
    )
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    from pipelines.storage import Warehouse, maintain

    settings = Settings.from_env()
    retention = timedelta(
        hours=args.retention_hours if args.retention_hours is not None else settings.retention_hours
    )
    result = maintain(Warehouse(settings.warehouse_path), settings.serving_path, retention)
    print(
        f"maintenance: {'merged small files, ' if result.merged else 'no merge (unpublished commits), '}"
        f"expired {result.expired} snapshots, deleted {result.deleted_files} files; data "
        f"{result.bytes_before / 2**20:,.1f} MiB -> {result.bytes_after / 2**20:,.1f} MiB in {result.seconds:.1f}s"
    )
    return 0


def cmd_snapshots(args: argparse.Namespace) -> int:
    from pipelines.storage import Warehouse

    settings = Settings.from_env()
    snapshots = Warehouse(settings.warehouse_path).snapshots()
    print(f"{'snapshot':>8}  {'time (UTC)':<19}  published")
    for s in snapshots[-args.last :]:
        print(
            f"{s.snapshot_id:>8}  {s.snapshot_time.astimezone(UTC):%Y-%m-%d %H:%M:%S}  {'yes' if s.published else ''}"
        )
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    """Query (or export) the warehouse at the latest published snapshot, or at an earlier one."""
    import duckdb

    from pipelines.storage import NothingPublishedError, Warehouse

    settings = Settings.from_env()
    try:
        with Warehouse(settings.warehouse_path).reader(snapshot=args.snapshot) as con:
            if args.out:
                fmt = "csv" if args.out.endswith(".csv") else "parquet"
                con.execute(f"copy ({args.sql}) to '{args.out.replace(chr(39), chr(39) * 2)}' (format {fmt})")
                print(f"wrote {args.out}")
                return 0
            cur = con.execute(args.sql)
            print("\t".join(d[0] for d in cur.description))
            for row in cur.fetchall():
                print("\t".join("" if v is None else str(v) for v in row))
    except NothingPublishedError as exc:
        print(f"markhouse: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        print(f"markhouse: query failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from pipelines.status import build_report, print_report

    settings = Settings.from_env()
    if not _has_serving_copy(settings):
        return 2
    report = build_report(
        settings.serving_path,
        as_of=args.as_of or datetime.now(UTC),
        max_age_hours=args.max_age_hours if args.max_age_hours is not None else settings.max_age_hours,
        missing_tolerance=args.missing_tolerance,
    )
    print_report(report)
    return 0 if report.ok else 1


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_summary(args: argparse.Namespace) -> int:
    from pipelines.summary import print_summary

    settings = Settings.from_env()
    if not _has_serving_copy(settings):
        return 2
    print_summary(settings.serving_path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pipelines.report import ReportInputError, write_report

    settings = Settings.from_env()
    if not _has_serving_copy(settings):
        return 2
    try:
        report = write_report(
            settings.serving_path,
            args.output,
            start=args.start,
            end=args.end,
            instruments=args.instrument,
            interval=args.interval,
        )
    except ReportInputError as exc:
        print(f"markhouse: {exc}", file=sys.stderr)
        return 2
    rng = report.data.range
    print(f"report ({rng.start} .. {rng.end}): {report.html_path}")
    print(f"charts: {', '.join(str(p) for p in report.png_paths.values())}")
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from pipelines.emulator.server import serve_forever

    kwargs = {"today": args.today} if args.today else {}
    serve_forever(host=args.host, port=args.port, **kwargs)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="markhouse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("backfill", help="load a month range from the vendors and rebuild the marts (one run)")
    p.add_argument("--start", type=_month, required=True, help="first month, YYYY-MM")
    p.add_argument("--end", type=_month, required=True, help="last month, YYYY-MM (inclusive)")
    p.add_argument(
        "--vendor",
        choices=["aperiodic", "kaiko", "cayolargo"],
        help="only this vendor (default: all in the universe)",
    )
    p.add_argument("--instrument", action="append", help="only this Atlas key (repeatable)")
    p.add_argument(
        "--wait",
        type=float,
        default=float(os.environ.get("MARKHOUSE_WRITER_WAIT_SECONDS", "3600")),
        metavar="SECONDS",
        help="how long to wait for another run writing the warehouse (default MARKHOUSE_WRITER_WAIT_SECONDS or 3600)",
    )
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser(
        "status", help="coverage and freshness per vendor x instrument x month; exit 1 if stale"
    )
    p.add_argument(
        "--max-age-hours", type=float, help="freshness bound (default MARKHOUSE_MAX_AGE_HOURS or 36)"
    )
    p.add_argument(
        "--missing-tolerance", type=int, default=0, help="missing intervals allowed per past month"
    )
    p.add_argument("--as-of", type=_utc, help="judge freshness as of this UTC time (default now)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("emulator", help="run the local vendor emulator in the foreground")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--today", type=date.fromisoformat, default=None, help="emulator's today (daily cut-over)")
    p.set_defaults(func=cmd_emulator)

    p = sub.add_parser("summary", help="rows per instrument and month, and example queries (serving copy)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser(
        "report", help="the marts as charts: one self-contained HTML page and PNGs (serving copy)"
    )
    p.add_argument("--start", type=date.fromisoformat, help="first day, YYYY-MM-DD (default: 180 days back)")
    p.add_argument("--end", type=date.fromisoformat, help="last day, YYYY-MM-DD (default: the newest data)")
    p.add_argument("--instrument", action="append", help="only this Atlas key (repeatable)")
    p.add_argument("--interval", default="1h", help="interval of the gap and divergence charts (default 1h)")
    p.add_argument(
        "--output",
        type=Path,
        help="HTML file to write; the PNGs go beside it (default: report/markhouse-report.html "
        "beside the serving copy)",
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "query", help="run SQL on the published snapshot (or --snapshot N: time travel); --out exports it"
    )
    p.add_argument("sql", help="a SELECT over raw.*, ref.*, marts.*")
    p.add_argument("--snapshot", type=int, help="an earlier snapshot id (see `markhouse snapshots`)")
    p.add_argument("--out", help="write the result to this .parquet or .csv file instead of printing it")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("snapshots", help="the warehouse's snapshots, and which ones a run published")
    p.add_argument("--last", type=int, default=20, help="how many of the newest to show")
    p.set_defaults(func=cmd_snapshots)

    p = sub.add_parser(
        "maintain",
        help="merge small files, expire old snapshots (keeping the published one), delete unused files",
    )
    p.add_argument(
        "--retention-hours",
        type=float,
        help="keep snapshots this recent (default MARKHOUSE_RETENTION_HOURS or 168)",
    )
    p.set_defaults(func=cmd_maintain)

    p = sub.add_parser(
        "import-duckdb",
        help="import a warehouse file of the previous layout (warehouse/markhouse.duckdb) once",
    )
    p.add_argument("path", nargs="?", type=Path, help="the old file (default: beside MARKHOUSE_WAREHOUSE)")
    p.set_defaults(func=cmd_import_duckdb)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
