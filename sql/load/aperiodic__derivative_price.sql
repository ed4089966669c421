-- Load validated Aperiodic parquet files into raw.aperiodic_derivative_price.
-- Inputs: $files (local paths), `staged_files` (path -> venue, instrument_key, timestamp_type,
-- interval, month), $loaded_at. Parquet `time` is the interval start in UTC.
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
    f.last_price_pct_change::double as last_price_pct_change,
    f.index_price_pct_change::double as index_price_pct_change,
    f.mark_price_pct_change::double as mark_price_pct_change,
    f.mark_index_pct_change_ratio::double as mark_index_pct_change_ratio,
    f.mark_last_pct_change_ratio::double as mark_last_pct_change_ratio,
    f.index_last_pct_change_ratio::double as index_last_pct_change_ratio,
    $loaded_at::timestamptz as loaded_at
from read_parquet($files, filename = true) as f
inner join staged_files as m on f.filename = m.path
