-- Load validated Aperiodic parquet files into raw.aperiodic_derivative_price.
-- Inputs: $files (local paths), `staged_files` (path -> venue, instrument_key, timestamp_type,
-- interval, month), $loaded_at. Parquet `time` is the interval start in UTC.
-- Prices were validated finite; the vendor's own pct changes and ratios are not: a denominator of 0
-- gives them NaN or +/-inf, which load as NULL (the contract's NULL for a zero denominator).
insert into raw.aperiodic_derivative_price by name
select
    m.venue,
    m.instrument_key,
    m.timestamp_type,
    m.interval,
    m.month,
    f.time::timestamptz as ts,
    f.last_price::double as last_price,
    f.index_price::double as index_price,
    f.mark_price::double as mark_price,
    case when isfinite(f.last_price_pct_change::double) then f.last_price_pct_change::double end as last_price_pct_change,
    case when isfinite(f.index_price_pct_change::double) then f.index_price_pct_change::double end as index_price_pct_change,
    case when isfinite(f.mark_price_pct_change::double) then f.mark_price_pct_change::double end as mark_price_pct_change,
    case when isfinite(f.mark_index_pct_change_ratio::double) then f.mark_index_pct_change_ratio::double end as mark_index_pct_change_ratio,
    case when isfinite(f.mark_last_pct_change_ratio::double) then f.mark_last_pct_change_ratio::double end as mark_last_pct_change_ratio,
    case when isfinite(f.index_last_pct_change_ratio::double) then f.index_last_pct_change_ratio::double end as index_last_pct_change_ratio,
    $loaded_at::timestamptz as loaded_at
from read_parquet($files, filename = true) as f
inner join staged_files as m on f.filename = m.path
