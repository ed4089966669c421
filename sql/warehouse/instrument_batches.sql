-- Where a marts window's instruments are cut into ranges of at most $max_rows raw rows: the key
-- that starts each range after the first, in key order. Rows per series as rows_per_month counts
-- them (its latest load), over the window's months; a window under $max_rows returns none.
with

latest as (
    select instrument_key, arg_max(rows, loaded_at) as rows
    from raw.load_log
    where month >= $window_start::timestamptz and month < $window_end::timestamptz
    group by vendor, venue, instrument_key, timestamp_type, interval, month
),

per_key as (
    select
        instrument_key,
        sum(sum(rows)) over (order by instrument_key rows between unbounded preceding and 1 preceding) as before
    from latest
    group by instrument_key
)

select min(instrument_key) as first_key
from per_key
where before >= $max_rows
group by floor(before / $max_rows)
order by first_key
