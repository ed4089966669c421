-- Load validated Aperiodic `funding` parquet files into raw.aperiodic_funding, columns by name.
-- Inputs: $files (local paths), `staged_files` (path -> venue, instrument_key, timestamp_type,
-- interval, month), $loaded_at. Parquet `time` is the interval start in UTC.
insert into raw.aperiodic_funding by name
select
    m.venue,
    m.instrument_key,
    m.timestamp_type,
    m.interval,
    m.month,
    f.time::timestamptz as ts,
    f.funding_rate::double as funding_rate,
    $loaded_at::timestamptz as loaded_at
from read_parquet($files, filename = true) as f
inner join staged_files as m on f.filename = m.path
