-- materialized: incremental
-- fct_price_interval: one row per (vendor, venue, instrument_key, timestamp_type, interval, ts).
-- Time column: ts (interval start). Computes the rows with $window_start <= ts < $window_end,
-- reading one day of observations either side (1d is the longest interval), so a rollup at
-- the window's edge sees its whole interval and a close-to-close return sees the previous row.
-- Only instruments with $first_key <= instrument_key < $next_key: a wide window runs by ranges
-- of instruments (pipelines/models.py, _by_instruments); each series is computed on its own.
-- The heavy steps (rollups, returns) group, join and order by a small integer series id; the
-- names are joined back once at the end.
with

intervals as (
    select * from ref.intervals
),

observations as (
    select o.*, i.seconds
    from intermediate.int_price_observations as o
    inner join intervals as i using (interval)
    where o.ts >= $window_start::timestamptz - interval 1 day
      and o.ts < $window_end::timestamptz + interval 1 day
      and o.instrument_key >= $first_key and o.instrument_key < $next_key
),

-- one row per natively loaded series in the window
native_series as (
    select
        *,
        row_number() over (order by vendor, venue, instrument_key, timestamp_type, seconds) as series_id
    from (select distinct vendor, venue, instrument_key, timestamp_type, interval, seconds from observations) as series
),

native_rows as (
    select
        s.series_id,
        o.seconds,
        o.ts,
        o.last_price, o.index_price, o.mark_price,
        1 as n_obs,
        o.last_price_pct_change, o.index_price_pct_change, o.mark_price_pct_change,
        o.mark_index_pct_change_ratio, o.mark_last_pct_change_ratio, o.index_last_pct_change_ratio
    from observations as o
    inner join native_series as s using (vendor, venue, instrument_key, timestamp_type, interval)
),

finest_native as (
    select
        vendor, venue, instrument_key, timestamp_type,
        arg_min(series_id, seconds) as series_id,
        arg_min(interval, seconds) as source_interval,
        min(seconds) as source_seconds
    from native_series
    group by all
),

-- standard intervals not loaded natively, rolled up from the finest native series where they
-- are a whole multiple of it (10m -> 1h, 4h, 1d; never 15m)
rollup_plan as (
    select f.*, t.interval, t.seconds
    from finest_native as f
    inner join intervals as t
        on t.seconds > f.source_seconds and t.seconds % f.source_seconds = 0
    anti join native_series as n
        on n.vendor = f.vendor and n.venue = f.venue and n.instrument_key = f.instrument_key
        and n.timestamp_type = f.timestamp_type and n.interval = t.interval
),

-- one pass over the source rows into base buckets (the largest interval dividing every target of
-- the series: 5m for 1m data), then each target from those, so each source row is read once
-- rather than once per target. Finals, firsts and counts compose exactly. arg_max/arg_min skip
-- rows whose value is null, so a final or first price is the last or first one observed.
rollup_sources as (
    -- sqlfluff does not parse DuckDB's `lambda a, b:` syntax yet
    select series_id, list_reduce(list(seconds), lambda a, b: gcd(a, b)) as base_seconds  -- noqa: PRS
    from rollup_plan
    group by all
),

base_buckets as (
    select
        r.series_id,
        to_timestamp(floor(epoch(r.ts) / s.base_seconds) * s.base_seconds) as ts,
        arg_max(r.last_price, r.ts) as last_price,
        arg_max(r.index_price, r.ts) as index_price,
        arg_max(r.mark_price, r.ts) as mark_price,
        arg_min(r.last_price, r.ts) as first_last_price,
        arg_min(r.index_price, r.ts) as first_index_price,
        arg_min(r.mark_price, r.ts) as first_mark_price,
        count(r.last_price) as n_last,
        count(r.index_price) as n_index,
        count(r.mark_price) as n_mark,
        count(*) as n_obs
    from native_rows as r
    inner join rollup_sources as s using (series_id)
    group by all
),

rollup_buckets as (
    select
        b.series_id,
        p.seconds,
        to_timestamp(floor(epoch(b.ts) / p.seconds) * p.seconds) as ts,
        arg_max(b.last_price, b.ts) as last_price,
        arg_max(b.index_price, b.ts) as index_price,
        arg_max(b.mark_price, b.ts) as mark_price,
        arg_min(b.first_last_price, b.ts) as first_last_price,
        arg_min(b.first_index_price, b.ts) as first_index_price,
        arg_min(b.first_mark_price, b.ts) as first_mark_price,
        sum(b.n_last) as n_last,
        sum(b.n_index) as n_index,
        sum(b.n_mark) as n_mark,
        sum(b.n_obs) as n_obs
    from base_buckets as b
    inner join rollup_plan as p using (series_id)
    group by all
),

rollup_rows as (
    select
        series_id, seconds, ts, last_price, index_price, mark_price, n_obs,
        case when n_last >= 2 then (last_price / first_last_price - 1) * 100 end as last_price_pct_change,
        case when n_index >= 2 then (index_price / first_index_price - 1) * 100 end as index_price_pct_change,
        case when n_mark >= 2 then (mark_price / first_mark_price - 1) * 100 end as mark_price_pct_change,
        null::double as mark_index_pct_change_ratio,
        null::double as mark_last_pct_change_ratio,
        null::double as index_last_pct_change_ratio
    from rollup_buckets
),

-- (series_id, seconds) names a series: a rolled-up one by its source's id and its own interval
all_rows as (
    select * from native_rows
    union all
    select * from rollup_rows
),

-- close to close against the immediately preceding interval of the same series (the row one
-- interval earlier, joined: a hash join spills to disk where a window over a wide universe's month
-- ran out of memory); a vendor's own ratio where it sent one, otherwise the quotient of the pct changes
with_returns as (
    select
        r.* exclude (mark_index_pct_change_ratio, mark_last_pct_change_ratio, index_last_pct_change_ratio),
        coalesce(r.mark_index_pct_change_ratio, r.mark_price_pct_change / nullif(r.index_price_pct_change, 0))
            as mark_index_pct_change_ratio,
        coalesce(r.mark_last_pct_change_ratio, r.mark_price_pct_change / nullif(r.last_price_pct_change, 0))
            as mark_last_pct_change_ratio,
        coalesce(r.index_last_pct_change_ratio, r.index_price_pct_change / nullif(r.last_price_pct_change, 0))
            as index_last_pct_change_ratio,
        (r.last_price / p.last_price - 1) * 100 as last_return_pct,
        (r.index_price / p.index_price - 1) * 100 as index_return_pct,
        (r.mark_price / p.mark_price - 1) * 100 as mark_return_pct
    from all_rows as r
    left join all_rows as p
        on p.series_id = r.series_id and p.seconds = r.seconds and p.ts = r.ts - to_seconds(r.seconds)
    where r.ts >= $window_start::timestamptz and r.ts < $window_end::timestamptz
),

series_names as (
    select series_id, seconds, vendor, venue, instrument_key, timestamp_type, interval, interval as source_interval
    from native_series
    union all
    select series_id, seconds, vendor, venue, instrument_key, timestamp_type, interval, source_interval
    from rollup_plan
),

final as (
    select
        n.vendor,
        n.venue,
        n.instrument_key,
        n.timestamp_type,
        n.interval,
        r.ts,
        n.source_interval,
        r.last_price,
        r.index_price,
        r.mark_price,
        r.n_obs::integer as n_obs,
        r.last_price_pct_change,
        r.index_price_pct_change,
        r.mark_price_pct_change,
        r.mark_index_pct_change_ratio,
        r.mark_last_pct_change_ratio,
        r.index_last_pct_change_ratio,
        r.last_return_pct,
        r.index_return_pct,
        r.mark_return_pct,
        r.mark_return_pct / nullif(r.index_return_pct, 0) as mark_index_return_ratio,
        r.mark_return_pct / nullif(r.last_return_pct, 0) as mark_last_return_ratio,
        r.index_return_pct / nullif(r.last_return_pct, 0) as index_last_return_ratio
    from with_returns as r
    inner join series_names as n using (series_id, seconds)
)

select * from final
