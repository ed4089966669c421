-- The raw rows each month holds now: per series and month the rows of its latest load
-- (raw.load_log keeps every load), summed per month. What the marts' windows are sized by.
with

latest as (
    select vendor, venue, instrument_key, timestamp_type, interval, month, arg_max(rows, loaded_at) as rows
    from raw.load_log
    group by all
)

select month, sum(rows)::bigint as rows
from latest
group by month
