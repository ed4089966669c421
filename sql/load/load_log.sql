-- Record each replaced partition in raw.load_log (same transaction as its rows); a partition
-- that came in several files is one row.
-- Inputs: `staged_partitions` (vendor, venue, instrument_key, timestamp_type, interval, month,
-- rows, files, origin), $loaded_at.
insert into raw.load_log by name
select
    vendor, venue, instrument_key, timestamp_type, interval, month,
    origin,
    sum(rows) as rows,
    sum(files) as files,
    $loaded_at::timestamptz as loaded_at
from staged_partitions
group by all
