"""Build the small real-data sample the emulator ships with.

A user's machine has no ``/work/shared``, so the emulator cannot read the full real data set at
run time. This module copies the part it serves (2023-01 onward, BTCUSDT and ETHUSDT, 1h last and
mark open/close plus the funding history) into ``pipelines/emulator/data/`` as two zstd parquet
files. Values are copied untouched: only columns are selected and last/mark are put side by side.

Run: ``python -m pipelines.emulator.build_sample --real /work/shared/data/real``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

DATA_DIR = Path(__file__).resolve().parent / "data"
KLINES_FILE = "binance_usdm_1h.parquet"
FUNDING_FILE = "binance_usdm_funding.parquet"
SAMPLE_START = "2023-01-01"
SYMBOLS = ("BTCUSDT", "ETHUSDT")

_KLINES_SQL = """
WITH k AS (
    SELECT symbol, price_type, open_time, open, close
    FROM read_parquet($path)
    WHERE venue = 'binance_usdm' AND interval = '1h' AND symbol IN ('BTCUSDT', 'ETHUSDT')
      AND open_time >= TIMESTAMPTZ '2023-01-01 00:00:00+00'
)
SELECT coalesce(l.symbol, m.symbol) AS symbol,
       coalesce(l.open_time, m.open_time) AS open_time,
       l.open AS last_open, l.close AS last_close,
       m.open AS mark_open, m.close AS mark_close
FROM (SELECT * FROM k WHERE price_type = 'last') l
FULL OUTER JOIN (SELECT * FROM k WHERE price_type = 'mark') m
  ON l.symbol = m.symbol AND l.open_time = m.open_time
ORDER BY symbol, open_time
"""

_FUNDING_SQL = """
SELECT symbol, calc_time, funding_interval_hours, last_funding_rate
FROM read_parquet($path)
WHERE venue = 'binance_usdm' AND symbol IN ('BTCUSDT', 'ETHUSDT')
  AND calc_time >= TIMESTAMPTZ '2023-01-01 00:00:00+00'
ORDER BY symbol, calc_time
"""


def _to_ms_utc(table: pa.Table, column: str) -> pa.Table:
    """Store times as timestamp[ms, UTC] (the resolution of the source) rather than DuckDB's us."""
    idx = table.schema.get_field_index(column)
    return table.set_column(idx, column, table.column(column).cast(pa.timestamp("ms", tz="UTC")))


def build_sample(real_dir: Path, out_dir: Path = DATA_DIR) -> tuple[Path, Path]:
    """Write the two sample parquet files from the real data folder and return their paths."""
    klines_src = real_dir / "binance_usdm_klines_1h_last_mark.derived.parquet"
    funding_src = real_dir / "binance_usdm_funding_rate.derived.parquet"
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        klines = con.execute(_KLINES_SQL, {"path": str(klines_src)}).to_arrow_table()
        funding = con.execute(_FUNDING_SQL, {"path": str(funding_src)}).to_arrow_table()
    finally:
        con.close()
    klines = _to_ms_utc(klines, "open_time")
    funding = _to_ms_utc(funding, "calc_time")
    klines_out = out_dir / KLINES_FILE
    funding_out = out_dir / FUNDING_FILE
    # byte_stream_split on the prices roughly halves the file against plain zstd.
    pq.write_table(
        klines,
        klines_out,
        compression="zstd",
        compression_level=19,
        use_dictionary=["symbol"],
        use_byte_stream_split=["last_open", "last_close", "mark_open", "mark_close"],
    )
    pq.write_table(funding, funding_out, compression="zstd", compression_level=19)
    return klines_out, funding_out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--real", type=Path, required=True, help="folder holding the real derived parquet")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder (default: package data)")
    args = parser.parse_args(argv)
    for path in build_sample(args.real, args.out):
        rows = pq.read_metadata(path).num_rows
        print(f"{path}  {rows} rows  {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
