-- materialized: incremental by month
-- rpt_coverage: one row per (vendor, venue, instrument_key, interval, month).
-- An interval counts as loaded when any timestamp type has a row for it. Expected rows run from
-- the month start to the month end, or to the last complete interval before the load time for
-- the month being loaded while it is still running, and never past a dated contract's expiry.
-- A dated contract (future or option) is expected from its first observation on: no vendor
-- publishes a listing time, and a quarterly or an option listed mid-month has nothing to miss before it.
-- Refreshed by month: every month the window touches is counted whole.
with

-- every month the window touches, whole (bounds folded to constants so the scan prunes by ts)
intervals as (
    select * from ref.intervals
),

instruments as (
    select venue, instrument_key, kind, expiry from ref.instrument
),

-- a row at or after a dated contract's expiry (a snapshot vendor's expiry snapshot) stays in the
-- data but is not counted as loaded: no interval is expected there
prices as (
    select
        p.vendor,
        p.venue,
        p.instrument_key,
        p.interval,
        p.ts,
        i.expiry is null or p.ts < to_timestamp(ceil(epoch(i.expiry) / s.seconds) * s.seconds) as expected
    from marts.fct_price_interval as p
    inner join intervals as s using (interval)
    left join instruments as i using (venue, instrument_key)
    where p.ts >= date_trunc('month', $window_start::timestamptz)
      and p.ts < date_trunc('month', $window_end::timestamptz - interval 1 microsecond) + interval 1 month
),

-- first observation of each dated contract (futures and options) over its whole history (a small scan)
series_start as (
    select p.vendor, p.venue, p.instrument_key, p.interval, min(p.ts) as first_seen
    from marts.fct_price_interval as p
    semi join instruments as i
        on i.venue = p.venue and i.instrument_key = p.instrument_key and i.kind in ('future', 'option')
    group by all
),

loads as (
    select vendor, venue, instrument_key, month, max(loaded_at) as loaded_at
    from raw.load_log
    group by all
),

-- per day first (integer arithmetic on the instant), then per month on the few day rows: days
-- split a month's instants, so the distinct counts add up exactly
loaded_days as (
    select
        vendor,
        venue,
        instrument_key,
        interval,
        epoch_us(ts) // 86400000000 as day_number,
        count(distinct ts) filter (where expected) as loaded_rows,
        min(ts) as first_ts,
        max(ts) as last_ts
    from prices
    group by all
),

loaded as (
    select
        vendor,
        venue,
        instrument_key,
        interval,
        date_trunc('month', first_ts)::date as month,
        sum(loaded_rows)::bigint as loaded_rows,
        min(first_ts) as first_ts,
        max(last_ts) as last_ts
    from loaded_days
    group by all
),

with_expected as (
    select
        loaded.*,
        loads.loaded_at,
        least(
            month::timestamptz + interval 1 month,
            to_timestamp(floor(epoch(coalesce(loads.loaded_at, now())) / i.seconds) * i.seconds),
            to_timestamp(ceil(epoch(instruments.expiry) / i.seconds) * i.seconds)
        ) as expected_end,
        case
            when instruments.kind in ('future', 'option')
                then greatest(month::timestamptz, coalesce(series_start.first_seen, month::timestamptz))
            else month::timestamptz
        end as expected_start,
        greatest(0, (epoch(expected_end) - epoch(expected_start)) // i.seconds)::bigint as expected_rows
    from loaded
    inner join intervals as i using (interval)
    left join series_start using (vendor, venue, instrument_key, interval)
    left join loads using (vendor, venue, instrument_key, month)
    left join instruments using (venue, instrument_key)
),

final as (
    select
        vendor,
        venue,
        instrument_key,
        interval,
        month,
        expected_rows,
        loaded_rows,
        greatest(expected_rows - loaded_rows, 0) as missing_intervals,
        first_ts,
        last_ts,
        loaded_at
    from with_expected
)

select * from final
