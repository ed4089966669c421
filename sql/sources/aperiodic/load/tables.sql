-- Load validated Aperiodic parquet files of one metric (`derivative_price`, `funding`, `open_interest`)
-- into raw.aperiodic_{table}, columns by name: pipelines/sources/source.py fills in {table}.
-- Inputs: $files (local paths), `staged_files` (path -> venue, instrument_key, timestamp_type,
-- interval, month), $loaded_at. Parquet `time` is the interval start in UTC.
-- A file holds `time` and exactly its metric's value columns (schema.METRIC_COLUMNS, checked before
-- this runs), each loaded as a double. Prices, funding rates and open interest were validated finite;
-- the vendor's own pct changes and ratios are not: a denominator of 0 gives them NaN or +/-inf, which
-- load as NULL (the contract's NULL for a zero denominator).
insert into raw.aperiodic_{table} by name
select
    m.venue,
    m.instrument_key,
    m.timestamp_type,
    m.interval,
    m.month,
    f.time::timestamptz as ts,
    case
        when isfinite(columns(f.* exclude (time, filename))::double) then columns(f.* exclude (time, filename))::double
    end,
    $loaded_at::timestamptz as loaded_at
from read_parquet($files, filename = true) as f
inner join staged_files as m on f.filename = m.path
