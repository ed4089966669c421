-- materialized: incremental
-- fct_price_interval: one row per (vendor, venue, instrument_key, timestamp_type, interval, ts).
-- Time column: ts (interval start). Computes the rows with $window_start <= ts < $window_end,
-- reading one day of observations either side (1d is the longest interval), so a rollup at
-- the window's edge sees its whole interval and a close-to-close return sees the previous row.
with

intervals as (
    select * from ref.intervals
),

observations as (
    select o.*, i.seconds
    from staging.int_price_observations as o
    inner join intervals as i using (interval)
    where o.ts >= $window_start::timestamptz - interval 1 day
      and o.ts < $window_end::timestamptz + interval 1 day
),

native_series as (
    select distinct vendor, venue, instrument_key, timestamp_type, interval, seconds
    from observations
),

finest_native as (
    select
        vendor, venue, instrument_key, timestamp_type,
        arg_min(interval, seconds) as source_interval,
        min(seconds) as source_seconds
    from native_series
    group by all
),

-- standard intervals not loaded natively, rolled up from the finest native series where they
-- are a whole multiple of it (10m -> 1h, 4h, 1d; never 15m)
rollup_plan as (
    select f.*, t.interval as target_interval, t.seconds as target_seconds
    from finest_native as f
    inner join intervals as t
        on t.seconds > f.source_seconds and t.seconds % f.source_seconds = 0
    anti join native_series as n
        on n.vendor = f.vendor and n.venue = f.venue and n.instrument_key = f.instrument_key
        and n.timestamp_type = f.timestamp_type and n.interval = t.interval
),

native_rows as (
    select
        vendor, venue, instrument_key, timestamp_type, interval, ts,
        interval as source_interval,
        seconds,
        last_price, index_price, mark_price,
        1 as n_obs,
        last_price_pct_change, index_price_pct_change, mark_price_pct_change,
        mark_index_pct_change_ratio, mark_last_pct_change_ratio, index_last_pct_change_ratio
    from observations
),

rollup_buckets as (
    select
        o.vendor, o.venue, o.instrument_key, o.timestamp_type,
        p.target_interval as interval,
        to_timestamp(floor(epoch(o.ts) / p.target_seconds) * p.target_seconds) as ts,
        p.source_interval,
        p.target_seconds as seconds,
        arg_max(o.last_price, o.ts) filter (where o.last_price is not null) as last_price,
        arg_max(o.index_price, o.ts) filter (where o.index_price is not null) as index_price,
        arg_max(o.mark_price, o.ts) filter (where o.mark_price is not null) as mark_price,
        arg_min(o.last_price, o.ts) filter (where o.last_price is not null) as first_last_price,
        arg_min(o.index_price, o.ts) filter (where o.index_price is not null) as first_index_price,
        arg_min(o.mark_price, o.ts) filter (where o.mark_price is not null) as first_mark_price,
        count(o.last_price) as n_last,
        count(o.index_price) as n_index,
        count(o.mark_price) as n_mark,
        count(*) as n_obs
    from observations as o
    inner join rollup_plan as p
        on o.vendor = p.vendor and o.venue = p.venue and o.instrument_key = p.instrument_key
        and o.timestamp_type = p.timestamp_type and o.interval = p.source_interval
    group by all
),

rollup_changes as (
    select
        * exclude (first_last_price, first_index_price, first_mark_price, n_last, n_index, n_mark),
        case when n_last >= 2 then (last_price / first_last_price - 1) * 100 end as last_price_pct_change,
        case when n_index >= 2 then (index_price / first_index_price - 1) * 100 end as index_price_pct_change,
        case when n_mark >= 2 then (mark_price / first_mark_price - 1) * 100 end as mark_price_pct_change
    from rollup_buckets
),

rollup_rows as (
    select
        *,
        mark_price_pct_change / nullif(index_price_pct_change, 0) as mark_index_pct_change_ratio,
        mark_price_pct_change / nullif(last_price_pct_change, 0) as mark_last_pct_change_ratio,
        index_price_pct_change / nullif(last_price_pct_change, 0) as index_last_pct_change_ratio
    from rollup_changes
),

all_rows as (
    select * from native_rows
    union all by name
    select * from rollup_rows
),

-- a vendor's own ratio where it sent one; otherwise the quotient of the pct changes
with_ratios as (
    select
        * replace (
            coalesce(mark_index_pct_change_ratio, mark_price_pct_change / nullif(index_price_pct_change, 0))
                as mark_index_pct_change_ratio,
            coalesce(mark_last_pct_change_ratio, mark_price_pct_change / nullif(last_price_pct_change, 0))
                as mark_last_pct_change_ratio,
            coalesce(index_last_pct_change_ratio, index_price_pct_change / nullif(last_price_pct_change, 0))
                as index_last_pct_change_ratio
        )
    from all_rows
),

-- close to close against the immediately preceding interval of the same series
with_previous as (
    select
        *,
        lag(ts) over series as previous_ts,
        lag(last_price) over series as previous_last_price,
        lag(index_price) over series as previous_index_price,
        lag(mark_price) over series as previous_mark_price
    from with_ratios
    window series as (partition by vendor, venue, instrument_key, timestamp_type, interval order by ts)
),

with_returns as (
    select
        *,
        previous_ts = ts - to_seconds(seconds) as has_previous,
        case when has_previous then (last_price / previous_last_price - 1) * 100 end as last_return_pct,
        case when has_previous then (index_price / previous_index_price - 1) * 100 end as index_return_pct,
        case when has_previous then (mark_price / previous_mark_price - 1) * 100 end as mark_return_pct
    from with_previous
),

final as (
    select
        vendor,
        venue,
        instrument_key,
        timestamp_type,
        interval,
        ts,
        source_interval,
        last_price,
        index_price,
        mark_price,
        n_obs::integer as n_obs,
        last_price_pct_change,
        index_price_pct_change,
        mark_price_pct_change,
        mark_index_pct_change_ratio,
        mark_last_pct_change_ratio,
        index_last_pct_change_ratio,
        last_return_pct,
        index_return_pct,
        mark_return_pct,
        mark_return_pct / nullif(index_return_pct, 0) as mark_index_return_ratio,
        mark_return_pct / nullif(last_return_pct, 0) as mark_last_return_ratio,
        index_return_pct / nullif(last_return_pct, 0) as index_last_return_ratio
    from with_returns
    where ts >= $window_start::timestamptz and ts < $window_end::timestamptz
)

select * from final
