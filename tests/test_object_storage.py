"""The lake's data files in a real S3-compatible bucket (moto's server, tests/objectstore.py) and
its catalog on a real PostgreSQL (pgserver): a `markhouse backfill` as a user runs it, the marts
read back through the lake and through the serving file by a BI connection with its own read-only
key, and no credential anywhere: output, files, bucket objects, catalog rows, error messages.
Offline; the servers stop at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse.lake import Warehouse, extension_path
from tests.conftest import BTC_PERPETUAL_1H_FROM_MARCH as UNIVERSE
from tests.conftest import database, isolated_environment, pg_cursor, run_command
from tests.objectstore import REGION, Keys, ObjectStore, object_store

PREFIX = "markhouse"
# per vendor and month, by the calendar: the 1h rows, their 4h and 1d rollups
FCT = {"2026-03": 744 + 744 // 4 + 31, "2026-04": 720 + 720 // 4 + 30}


@pytest.fixture(scope="module")
def store() -> Iterator[ObjectStore]:
    with object_store() as server:
        yield server


def bi_connection(serving: Path, store: ObjectStore, keys: Keys) -> duckdb.DuckDBPyConnection:
    """What a BI tool does with the serving file of a bucket lake: open it read-only, load httpfs
    and create its own (temporary) S3 secret; the views name ``s3://`` URLs and are bound when
    queried, so the secret in force then is the tool's."""
    con = duckdb.connect(str(serving), read_only=True)
    con.execute(f"load '{extension_path('duckdb_extension_httpfs', 'httpfs')}'")
    con.execute(
        "create temporary secret bi (type s3, key_id $k, secret $s, endpoint $e, region $r, "
        "url_style 'path', use_ssl false)",
        {"k": keys.key_id, "s": keys.secret, "e": store.endpoint, "r": REGION},
    )
    return con


def catalog_text(url: str) -> str:
    """Every row of every table in the catalog database, as text."""
    with pg_cursor(url) as cur:
        cur.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema not in ('pg_catalog', 'information_schema') and table_type = 'BASE TABLE'"
        )
        tables = cur.fetchall()
        out = []
        for schema, table in tables:
            cur.execute(f'select t::text from "{schema}"."{table}" t')
            out += [r[0] for r in cur.fetchall()]
    assert any("ducklake_data_file" in t for _, t in tables), tables
    return "\n".join(out)


def test_a_backfill_into_a_bucket_on_a_postgres_catalog_reads_back_and_no_credential_leaks(
    store: ObjectStore, postgres: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = database(postgres, "lake_s3")
    data_path = f"s3://{store.bucket}/{PREFIX}"
    universe = tmp_path / "universe.yaml"
    universe.write_text(UNIVERSE)
    settings = {"MARKHOUSE_CATALOG": catalog, "MARKHOUSE_DATA_PATH": data_path, **store.env(store.writer)}
    env = isolated_environment(
        tmp_path, MARKHOUSE_UNIVERSE=str(universe), PYTHONWARNINGS="ignore", **settings
    )
    out = run_command("markhouse", "backfill", "--start", "2026-03", "--end", "2026-04", env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    printed = [out.stdout, out.stderr]

    # the data files are in the bucket, under the prefix, and none on this host
    objects = store.objects()
    parquet = [k for k in objects if k.endswith(".parquet")]
    assert parquet and all(k.startswith(f"{PREFIX}/") for k in objects), sorted(objects)
    assert not list(tmp_path.rglob("*.parquet"))

    # the marts, read back through the lake (catalog on PostgreSQL, files in the bucket)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    lake = Warehouse(tmp_path / "warehouse" / "markhouse.sqlite")
    assert lake.catalog == catalog and lake.data_is_remote
    query = (
        "select vendor, strftime(ts, '%Y-%m') as m, count(*) from marts.fct_price_interval "
        "group by all order by all"
    )
    with lake.reader() as con:
        counts = con.execute(query).fetchall()
        mart = con.execute("select * from marts.fct_price_interval order by all").fetchall()
    assert counts == [(v, m, n) for v in ("aperiodic", "kaiko") for m, n in FCT.items()]

    # a BI tool reads the serving file with its own read-only key: the same rows, and that key
    # cannot write to the bucket
    serving = tmp_path / "warehouse" / "serving.duckdb"
    con = bi_connection(serving, store, store.reader)
    try:
        assert con.execute(query).fetchall() == counts
        assert con.execute("select * from marts.fct_price_interval order by all").fetchall() == mart
        with pytest.raises(duckdb.Error, match="403"):
            con.execute(f"copy (select 1 as x) to 's3://{store.bucket}/{PREFIX}/intruder.parquet'")
    finally:
        con.close()
    # ... and without a key of the store's, the serving file reads nothing: it holds no credential
    con = bi_connection(serving, store, Keys("AKIANOBODY0000000000", "not-a-secret"))
    try:
        with pytest.raises(duckdb.Error, match="403"):
            con.execute(query)
    finally:
        con.close()

    # an error on the object store names neither the key id nor the secret
    wrong = "a-wrong-secret-of-the-right-key-id"
    failed = run_command(
        "markhouse", "query", "select count(*) from marts.fct_price_interval",
        env={**env, "MARKHOUSE_S3_SECRET": wrong},
    )  # fmt: skip
    assert failed.returncode != 0 and "403" in failed.stderr + failed.stdout, failed.stderr[-3000:]
    printed += [failed.stdout, failed.stderr]

    needles = {
        s.encode()
        for s in (store.writer.key_id, store.writer.secret, store.reader.key_id, store.reader.secret, wrong)
    }
    seen = {
        "output": "\n".join(printed).encode(),
        "catalog rows": catalog_text(catalog).encode(),
        **{f"bucket {k}": v for k, v in objects.items()},
        # every file under the temporary folders: the host's warehouse folder (lock, staging), the
        # serving file, Dagster's run and event storage (every log line), the universe
        **{str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()},
    }
    assert len(seen) > 10
    leaks = [(where, n) for where, blob in seen.items() for n in needles if n in blob]
    assert not leaks, leaks
