-- Record each replaced partition in raw.load_log (same transaction as its rows).
-- Inputs: `staged_partitions` (vendor, venue, instrument_key, timestamp_type, interval, month,
-- rows, files), $loaded_at.
insert into raw.load_log by name
select *, $loaded_at::timestamptz as loaded_at
from staged_partitions
