"""Shared fixtures: a throwaway warehouse under tmp_path and a fresh local emulator per test.

Before any test module is imported, every path markhouse or Dagster would write to by default is
pointed at a temporary folder, and the vendor settings of the shell are dropped (tests run
offline, against the emulator). The session fails if the checkout's own ``warehouse/`` or
``.dagster_home/`` changed while it ran: those are the user's files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from pipelines import sources
from pipelines.emulator.server import Emulator
from pipelines.http import RetryPolicy
from pipelines.settings import GUARDED
from pipelines.sources.aperiodic.client import AperiodicClient
from pipelines.warehouse.lake import Warehouse

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run_command(
    program: str, *args: str, env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``program`` of this environment (``markhouse``, ``dagster``, ``dg``) with ``args``, run from the
    checkout with ``env`` only, its output captured as text."""
    return subprocess.run(
        [str(BIN / program), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def isolated_environment(root: Path, **extra: str) -> dict[str, str]:
    """This process's environment for a ``markhouse`` (or ``dagster``) child that works only under
    ``root``: its own Dagster home (with the repo's ``dagster.yaml``), warehouse and serving copy,
    and no vendor, markhouse or Dagster variable inherited, so it can neither reach a real vendor
    (the vendors' prefixes come from the source registry) nor touch the checkout's warehouse.
    ``extra`` is set last."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    dropped = (*sources.env_prefixes(), "MARKHOUSE_", "DAGSTER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped) or k == GUARDED}
    env.update(
        DAGSTER_HOME=str(home),
        MARKHOUSE_WAREHOUSE=str(root / "warehouse" / "markhouse.sqlite"),
        MARKHOUSE_SERVING=str(root / "warehouse" / "serving.duckdb"),
        **extra,
    )
    return env


USER_PATHS = (REPO / "warehouse", REPO / ".dagster_home")
ISOLATED_ENV = ("MARKHOUSE_WAREHOUSE", "MARKHOUSE_SERVING", "DAGSTER_HOME")
_session_tmp: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _session_tmp
    _session_tmp = Path(tempfile.mkdtemp(prefix="markhouse-tests-"))
    for name in list(os.environ):
        if name.startswith((*sources.env_prefixes(), "MARKHOUSE_")):
            del os.environ[name]
    home = _session_tmp / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    os.environ.update(
        MARKHOUSE_WAREHOUSE=str(_session_tmp / "warehouse" / "markhouse.duckdb"),
        MARKHOUSE_SERVING=str(_session_tmp / "warehouse" / "serving.duckdb"),
        DAGSTER_HOME=str(home),
        XDG_CACHE_HOME=str(_session_tmp / "cache"),  # the mart catalog's cache, not the user's
    )
    # the checkout's own folders are out of reach of every test and every command a test starts: a
    # path under one fails there and then (pipelines.settings.unguarded); the user's own runs while
    # the tests run write there freely
    os.environ[GUARDED] = os.pathsep.join(str(p) for p in USER_PATHS)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _session_tmp is not None:
        shutil.rmtree(_session_tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A real PostgreSQL 16 server (the ``pgserver`` dev dependency) on a unix socket, stopped (and
    its folder removed) at the end. Run as root, the server runs as the user ``pgserver``, which
    must traverse every folder above its data: not under pytest's own temporary root, which a
    concurrent pytest session resets to 0700."""
    import pgserver

    folder = Path(tempfile.mkdtemp(prefix="markhouse-pg-"))
    try:
        with pgserver.get_server(folder, cleanup_mode="delete") as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def database(server: object, name: str) -> str:
    """A fresh database on ``server``; its URL."""
    server.psql(f"create database {name};")  # type: ignore[attr-defined]
    uri: str = server.get_uri()  # type: ignore[attr-defined]
    return uri.replace("/postgres?", f"/{name}?")


@contextmanager
def pg_cursor(url: str) -> Iterator[Any]:
    """A cursor on the PostgreSQL database at ``url``, its connection closed after (psycopg2's own
    ``with`` ends a transaction, not the connection)."""
    db = psycopg2.connect(url)
    try:
        with db.cursor() as cur:
            yield cur
    finally:
        db.close()


def insert_aperiodic_hour(con: Any) -> None:
    """One raw Aperiodic row: BTC's Binance perpetual, 1h at 2026-03-01 00:00 UTC (last 101, index
    100, mark 100.5)."""
    con.execute(
        "insert into raw.aperiodic_derivative_price (venue, instrument_key, timestamp_type, interval, "
        "month, ts, last_price, index_price, mark_price, loaded_at) values ('binance-futures', "
        "'perpetual-BTC-USDT:USDT', 'exchange', '1h', date '2026-03-01', "
        "timestamptz '2026-03-01 00:00:00+00', 101, 100, 100.5, now())"
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse" / "test.sqlite")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[Emulator]:
    """One emulator for a whole test module (starting one per test would cost more than the tests)."""
    with Emulator() as server:
        yield server


def _fresh(emu: Emulator) -> None:
    emu.faults.clear()
    emu.clock.reset()


@pytest.fixture
def emu(module_emulator: Emulator) -> Iterator[Emulator]:
    """The module's emulator as if new: no faults, the real clock and no requests recorded before the
    test; no faults and the real clock left behind for the next."""
    _fresh(module_emulator)
    module_emulator.requests.clear()
    yield module_emulator
    _fresh(module_emulator)


BTC_1H = {
    "venue": "binance-futures",
    "instrument_key": "perpetual-BTC-USDT:USDT",
    "timestamp_type": "exchange",
    "interval": "1h",
}
"""The series columns of Binance's BTC perpetual at 1h, the rows tests most often write by hand."""


def insert_rows(con: Any, table: str, rows: Iterable[dict[str, Any]], **defaults: Any) -> None:
    """Each of ``rows`` over ``defaults`` into ``table``, columns by name (one left out is null); a row
    of a ``raw`` table gets the month of its ``ts``, the table's partition column."""
    for row in rows:
        values = {**defaults, **row}
        if table.startswith("raw."):
            values["month"] = date(values["ts"].year, values["ts"].month, 1)
        marks = ", ".join("?" * len(values))
        con.execute(f"insert into {table} ({', '.join(values)}) values ({marks})", list(values.values()))


def dict_rows(con: Any, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Each row of ``sql`` as {column: value}: assertions then name the column they check."""
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def one_row(con: Any, sql: str, params: Sequence[Any] = ()) -> dict[str, Any]:
    """The single row of ``sql`` as {column: value}; fails naming the parameters when there is not
    exactly one (a formula test that silently read the first of two would prove nothing)."""
    rows = dict_rows(con, sql, params)
    assert len(rows) == 1, f"expected one row for {list(params)}, got {len(rows)}"
    return rows[0]


def by_key_and_ts(con: Any, sql: str) -> dict[tuple[Any, Any], tuple[Any, ...]]:
    """The rows of ``sql`` (instrument_key, ts, values...) as {(instrument_key, ts): values}."""
    return {(r[0], r[1]): r[2:] for r in con.execute(sql).fetchall()}


def raw_rows(warehouse: Warehouse, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``raw.<table>`` but its load time, sorted: what two loads of the same data share."""
    with warehouse.writer() as con:
        rows: list[tuple[Any, ...]] = con.execute(
            f"select * exclude (loaded_at) from raw.{table} order by all"
        ).fetchall()
    return rows


def month_counts(warehouse: Warehouse, table: str, by: str = "instrument_key") -> dict[tuple[str, ...], int]:
    """Rows of ``raw.<table>`` per (``by``'s columns..., month as ``YYYY-MM``)."""
    with warehouse.writer() as con:
        rows = con.execute(
            f"select {by}, strftime(month, '%Y-%m'), count(*) from raw.{table} group by all"
        ).fetchall()
    return {tuple(row[:-1]): row[-1] for row in rows}


def mart_rows(con: Any) -> dict[str, list[tuple[object, ...]]]:
    """Every materialized mart's rows, sorted, without the load times (they differ run to run)."""
    names = [
        n
        for (n,) in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database() "
            "and schema_name = 'marts' order by 1"
        ).fetchall()
    ]
    out = {}
    for name in names:
        columns = [
            c
            for (c,) in con.execute(
                "select column_name from duckdb_columns() where database_name = current_database() "
                "and schema_name = 'marts' and table_name = ? order by column_index",
                [name],
            ).fetchall()
            if c not in ("loaded_at", "refreshed_at", "age_hours")
        ]
        select = ", ".join(f'"{c}"' for c in columns)
        out[name] = con.execute(f"select {select} from marts.{name} order by all").fetchall()
    return out


# a small universe for the runs against real servers (S3, PostgreSQL, the daemon): two vendors'
# BTC perpetual at 1h
BTC_PERPETUAL_1H_FROM_MARCH = """
start_month: 2026-03
aperiodic:
  metrics: [derivative_price]
  timestamp_types: [exchange]
  intervals: [1h]
  instruments:
    - venue: binance-futures
      symbol: perpetual-BTC-USDT:USDT
kaiko:
  intervals: [1h]
  instruments:
    - venue: binance-futures
      symbol: perpetual-BTC-USDT:USDT
"""

FAST_RETRY = RetryPolicy(max_attempts=4, backoff_base=0.01, max_delay=2.0, max_total_seconds=10.0)


@pytest.fixture
def aperiodic(emulator: Emulator) -> AperiodicClient:
    return AperiodicClient(emulator.base_url("aperiodic"), emulator.api_key, retry=FAST_RETRY)
