"""One unit that fails never stops the others (issue 24): the rest load and the marts of what
loaded are published, the failure is named (the asset's check, the run, the exit code), and the
printed retry loads only what failed. Expected values come from a clean run of the same universe."""

from __future__ import annotations

import shlex
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import retry_commands
from pipelines.emulator.server import Emulator
from pipelines.sources.kaiko.load import Series, load_months
from pipelines.sources.kaiko.source import KaikoCode
from pipelines.warehouse.lake import Warehouse
from tests.conftest import isolated_environment, month_counts, run_command
from tests.test_reliability import kaiko, marts

BTC, FUTURE = "perpetual-BTC-USDT:USDT", "future-BTC-USDT:USDT-20260626"
UNIVERSE = f"""\
start_month: 2026-01
aperiodic:
  timestamp_types: [exchange]
  intervals: [1h]
  instruments:
    - {{venue: binance-futures, symbol: {BTC}}}
    - {{venue: binance-futures, symbol: perpetual-ETH-USDT:USDT}}
kaiko:
  intervals: [1h]
  instruments:
    - {{venue: binance-futures, symbol: {BTC}}}
    - {{venue: binance-futures, symbol: {FUTURE}}}
cayolargo:
  coins: [BTC]
"""
RANGE = ["--start", "2026-02", "--end", "2026-03"]
# the first page of Kaiko's BTC perpetual in February (`btcusdt&`: not the futures' btcusdt260626)
KAIKO_BTC_FEB = "instrument=btcusdt&interval=1h&page_size=1000&sort=asc&start_time=2026-02"
FUNDING_BTC_FEB = f"/funding/binance-futures/1h/exchange/{BTC}/2026-02.parquet"
FEB, MARCH = date(2026, 2, 1), date(2026, 3, 1)


def vendor_rows(tables: dict[str, list[tuple]], serving: Path, vendor: str) -> dict[str, int]:
    """Row counts per mart of ``vendor`` (the marts with a vendor column)."""
    import duckdb

    con = duckdb.connect(str(serving), read_only=True)
    try:
        return {
            name: con.execute(f"select count(*) from marts.{name} where vendor = ?", [vendor]).fetchone()[0]  # type: ignore[index]
            for name in tables
            if "vendor" in [d[0] for d in con.execute(f"describe marts.{name}").fetchall()]
        }
    finally:
        con.close()


def instance_of(env: dict[str, str]) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])


def query(warehouse: str, sql: str) -> list[tuple]:
    with Warehouse(warehouse).writer() as con:
        return con.execute(sql).fetchall()


def test_a_failing_metric_and_instrument_leave_the_other_vendors_marts_published_and_the_retry_loads_only_them(
    tmp_path: Path,
) -> None:
    (tmp_path / "universe.yaml").write_text(UNIVERSE)
    with Emulator() as emu:

        def environment(name: str) -> dict[str, str]:
            vendors = ("aperiodic", "kaiko", "cayolargo")
            return isolated_environment(
                tmp_path / name,
                MARKHOUSE_UNIVERSE=str(tmp_path / "universe.yaml"),
                PYTHONWARNINGS="ignore",
                **{f"{v.upper()}_BASE_URL": emu.base_url(v) for v in vendors},
                **{f"{v.upper()}_API_KEY": emu.api_key for v in vendors},
            )

        clean, env = environment("clean"), environment("faulty")
        assert run_command("markhouse", "backfill", *RANGE, env=clean).returncode == 0
        emu.faults.inject("status", status=500, match=KAIKO_BTC_FEB, times=-1)
        emu.faults.inject("truncate", target="file", match=FUNDING_BTC_FEB, times=-1)
        out = run_command("markhouse", "backfill", *RANGE, env=env)

        # the exit code of the first failure's kind (a vendor: 4), a line per failed unit, the retry
        assert out.returncode == 4, out.stderr[-3000:]
        said = out.stderr.splitlines()[-5:]
        assert said[0].startswith(
            f"markhouse: aperiodic funding binance-futures {BTC} 1h exchange 2026-02: not a readable parquet file"
        ), said
        assert said[1].startswith(
            "markhouse: kaiko bnce perpetual-future btcusdt 1h 2026-02: kaiko: HTTP 500: gave up after 5 attempts"
        )
        assert said[1].endswith(
            "-> check the vendor's base URL and API key (KAIKO_BASE_URL, KAIKO_API_KEY) and the network, or try again later"
        )
        assert "X-Amz-Signature=" not in out.stderr.replace("X-Amz-Signature=REDACTED", "")
        retries = [
            f"markhouse backfill --start 2026-02 --end 2026-02 --vendor aperiodic --table funding --instrument {BTC}",
            f"markhouse backfill --start 2026-02 --end 2026-02 --vendor kaiko --table derivative_price --instrument {BTC}",
        ]
        assert said[2:] == [
            "markhouse: 2 unit(s) failed; the marts of what loaded are published",
            *(f"markhouse: to load only what failed: {command}" for command in retries),
        ]

        # published: CayøLargo's marts as in the clean run, Aperiodic's prices, Kaiko but its February BTC
        serving, clean_serving = Path(env["MARKHOUSE_SERVING"]), Path(clean["MARKHOUSE_SERVING"])
        got, want = marts(serving), marts(clean_serving)
        assert vendor_rows(got, serving, "cayolargo") == vendor_rows(want, clean_serving, "cayolargo")
        cayolargo = [name for name, n in vendor_rows(want, clean_serving, "cayolargo").items() if n]
        assert {"fct_price_interval", "fct_carry", "rpt_coverage"} <= set(cayolargo)
        price = "select * from marts.fct_price_interval where vendor = 'cayolargo' order by all"
        assert query(env["MARKHOUSE_WAREHOUSE"], price) == query(clean["MARKHOUSE_WAREHOUSE"], price)
        kaiko_keys = (
            "select instrument_key, strftime(ts, '%Y-%m'), count(*) from marts.fct_price_interval "
            "where vendor = 'kaiko' and interval = '1h' group by all"
        )
        expected = {k: n for k, n in ((r[:2], r[2]) for r in query(clean["MARKHOUSE_WAREHOUSE"], kaiko_keys))}
        assert expected.pop((BTC, "2026-02")) == 28 * 24
        assert {r[:2]: r[2] for r in query(env["MARKHOUSE_WAREHOUSE"], kaiko_keys)} == expected
        funding = "select count(*) from raw.aperiodic_funding where instrument_key = ? and month = ?"
        assert query(
            env["MARKHOUSE_WAREHOUSE"], funding.replace("?", f"'{BTC}'", 1).replace("?", "'2026-02-01'")
        ) == [(0,)]

        # the run failed, naming both units; each failing asset's check failed, the others passed
        with instance_of(env) as instance:
            (run,) = instance.get_runs()
            assert run.status == dg.DagsterRunStatus.FAILURE
            failure = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE
            ).records
            (marts_failure,) = [r.event_log_entry for r in failure]
            assert marts_failure.step_key == "marts"
            message = marts_failure.dagster_event.event_specific_data.error.message  # type: ignore[union-attr]
            assert "2 unit(s) failed to load (the marts of what loaded are published)" in message
            assert "kaiko bnce perpetual-future btcusdt 1h 2026-02: " in message
            assert f"aperiodic funding binance-futures {BTC} 1h exchange 2026-02: " in message
            checks = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            ).records
            verdicts = {
                e.asset_key.to_user_string(): e.passed
                for r in checks
                if (e := r.event_log_entry.dagster_event.event_specific_data).check_name
                == "every_unit_loaded"  # type: ignore[union-attr]
            }
        assert verdicts == {
            "raw/aperiodic_derivative_price": True,
            "raw/aperiodic_funding": False,
            "raw/aperiodic_open_interest": True,
            "raw/aperiodic_basis": True,
            "raw/kaiko_derivative_price": False,
            "raw/cayolargo_futures": True,
        }

        # the retries, once the faults are gone, load only what failed and end as the clean run
        emu.faults.clear()
        (before,) = query(env["MARKHOUSE_WAREHOUSE"], "select max(loaded_at) from raw.load_log")[0]
        for command in retries:
            retry = run_command(*shlex.split(command), env=env)
            assert retry.returncode == 0, retry.stderr[-3000:]
        logged = query(
            env["MARKHOUSE_WAREHOUSE"],
            f"select vendor, instrument_key, strftime(month, '%Y-%m'), rows from raw.load_log where loaded_at > '{before}'",
        )
        assert logged == [("kaiko", BTC, "2026-02", 28 * 24)]
        for table in (
            "aperiodic_derivative_price",
            "aperiodic_funding",
            "aperiodic_open_interest",
            "aperiodic_basis",
            "kaiko_derivative_price",
            "cayolargo_futures",
        ):
            reloaded = query(
                env["MARKHOUSE_WAREHOUSE"],
                f"select instrument_key, strftime(month, '%Y-%m'), count(*) from raw.{table} where loaded_at > '{before}' group by all",
            )
            assert reloaded == {
                "aperiodic_funding": [(BTC, "2026-02", 28 * 24)],
                "kaiko_derivative_price": [(BTC, "2026-02", 28 * 24)],
            }.get(table, []), table
    assert marts(serving) == marts(clean_serving)


def test_a_vendor_that_fails_whole_leaves_the_others_published(tmp_path: Path) -> None:
    """Every Kaiko request answers an HTML page: Kaiko is one failed unit, Aperiodic is published."""
    universe = tmp_path / "universe.yaml"
    universe.write_text(
        "start_month: 2026-01\n"
        f"aperiodic:\n  metrics: [derivative_price]\n  instruments:\n    - {{venue: binance-futures, symbol: {BTC}}}\n"
        f"kaiko:\n  intervals: [1h]\n  instruments:\n    - {{venue: binance-futures, symbol: {BTC}}}\n"
    )
    with Emulator() as emu:
        env = isolated_environment(
            tmp_path / "run",
            MARKHOUSE_UNIVERSE=str(universe),
            PYTHONWARNINGS="ignore",
            **{f"{v.upper()}_BASE_URL": emu.base_url(v) for v in ("aperiodic", "kaiko")},
            **{f"{v.upper()}_API_KEY": emu.api_key for v in ("aperiodic", "kaiko")},
        )
        emu.faults.inject("html_200", match="/v2/data/", times=-1)
        out = run_command("markhouse", "backfill", "--start", "2026-02", "--end", "2026-02", env=env)
    assert out.returncode == 4, out.stderr[-3000:]
    said = out.stderr.splitlines()[-3:]
    assert (
        said[0].startswith(
            "markhouse: kaiko derivative_price 2026-02..2026-02 (every unit): kaiko: page 1: bnce btcusdt 1h "
        )
        and "expected Kaiko's JSON envelope, got an HTML page" in said[0]
    )
    assert said[1:] == [
        "markhouse: 1 unit(s) failed; the marts of what loaded are published",
        "markhouse: to load only what failed: markhouse backfill --start 2026-02 --end 2026-02 --vendor kaiko "
        "--table derivative_price",
    ]
    prices = "select vendor, count(*) from marts.fct_price_interval where interval = '1h' group by all"
    assert query(env["MARKHOUSE_WAREHOUSE"], prices) == [("aperiodic", 28 * 24)]


def test_the_retry_names_exactly_the_failed_units() -> None:
    def unit(vendor: str, table: str, keys: list[str], months: list[str]) -> dict[str, object]:
        return {"vendor": vendor, "table": table, "instruments": keys, "months": months}

    failed = [
        unit("kaiko", "derivative_price", ["A"], ["2026-02"]),
        unit("kaiko", "derivative_price", ["B"], ["2026-02"]),
        unit("kaiko", "derivative_price", ["A"], ["2026-03"]),
        unit("kaiko", "derivative_price", ["C"], ["2026-05"]),
        unit("aperiodic", "funding", ["A"], ["2026-02"]),
        unit("aperiodic", "basis", ["A"], ["2026-02"]),
        unit("cayolargo", "futures", [], ["2026-01"]),  # a coin-month: every instrument
        unit("cayolargo", "futures", ["perpetual-BTC-USD:BTC"], ["2026-02"]),
    ]
    base = "markhouse backfill --start"
    assert retry_commands(failed) == [
        f"{base} 2026-02 --end 2026-03 --vendor kaiko --table derivative_price --instrument A",
        f"{base} 2026-02 --end 2026-02 --vendor kaiko --table derivative_price --instrument B",
        f"{base} 2026-05 --end 2026-05 --vendor kaiko --table derivative_price --instrument C",
        f"{base} 2026-02 --end 2026-02 --vendor aperiodic --table basis --table funding --instrument A",
        f"{base} 2026-01 --end 2026-02 --vendor cayolargo --table futures",
    ]


KAIKO = [
    Series("binance-futures", BTC, KaikoCode("bnce", "perpetual-future", "btcusdt"), "1h"),
    Series("binance-futures", FUTURE, KaikoCode("bnce", "future", "btcusdt260626"), "1h"),
]


def test_a_failed_unit_is_reported_while_the_others_load(emulator: Emulator, warehouse: Warehouse) -> None:
    emulator.faults.inject("html_200", match=KAIKO_BTC_FEB, times=-1)
    report = load_months(kaiko(emulator), warehouse, KAIKO, [FEB, MARCH], progress=lambda _: None)
    ((label, key, months, error),) = report.failed
    assert (label, key, months) == ("kaiko bnce perpetual-future btcusdt 1h 2026-02", [BTC], [FEB])
    assert "expected Kaiko's JSON envelope, got an HTML page" in str(error)
    assert month_counts(warehouse, "kaiko_derivative_price") == {
        (FUTURE, "2026-02"): 28 * 24,
        (BTC, "2026-03"): 31 * 24,
        (FUTURE, "2026-03"): 31 * 24,
    }


def test_when_every_unit_fails_the_load_fails_with_the_first(
    emulator: Emulator, warehouse: Warehouse
) -> None:
    emulator.faults.inject("html_200", match="instrument=btcusdt", times=-1)
    with pytest.raises(Exception, match="expected Kaiko's JSON envelope") as err:
        load_months(kaiko(emulator), warehouse, KAIKO, [FEB], progress=lambda _: None)
    assert "bnce btcusdt 1h 2026-02" in str(err.value)  # the first unit, the perpetual's
    assert month_counts(warehouse, "kaiko_derivative_price") == {}
