-- Load validated Aperiodic parquet files of one metric (`derivative_price`, `funding`, `open_interest`,
-- `basis`) into raw.aperiodic_{table}, columns by name: pipelines/sources/source.py fills in {table}.
-- Inputs: $files (local paths), `staged_files` (path -> venue, instrument_key, timestamp_type,
-- interval, month), $loaded_at. Parquet `time` is the interval start in UTC.
-- A file holds `time`, its metric's required columns and any of its other published ones
-- (source.METRIC_COLUMNS, checked before this runs; a column outside them was dropped), each loaded
-- as a double; files of one batch may differ (union by name), a column a file lacks loads as NULL.
-- Prices, funding rates, open interest and basis were validated finite; the vendor's own pct
-- changes, ratios and statistics are not: a denominator of 0 gives them NaN or +/-inf, which load as
-- NULL (the contract's NULL for a zero denominator).
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
from read_parquet($files, filename = true, union_by_name = true) as f
inner join staged_files as m on f.filename = m.path
