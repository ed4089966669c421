-- rpt_coverage: one row per (vendor, venue, instrument_key, interval, month).
-- An interval counts as loaded when any timestamp type has a row for it. Expected rows run from
-- the month start to the month end, or to the last complete interval before the load time for
-- the month being loaded while it is still running, and never past a dated contract's expiry.
-- A dated contract is expected from its first observation on: no vendor publishes a listing time,
-- and a quarterly listed mid-month has nothing to miss before it.
with

prices as (
    select * from marts.fct_price_interval
),

intervals as (
    select * from ref.intervals
),

instruments as (
    select venue, instrument_key, kind, expiry from ref.instrument
),

series_start as (
    select vendor, venue, instrument_key, interval, min(ts) as first_seen
    from prices
    group by all
),

loads as (
    select vendor, venue, instrument_key, month, max(loaded_at) as loaded_at
    from raw.load_log
    group by all
),

loaded as (
    select
        vendor,
        venue,
        instrument_key,
        interval,
        date_trunc('month', ts)::date as month,
        count(distinct ts) as loaded_rows,
        min(ts) as first_ts,
        max(ts) as last_ts
    from prices
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
            when instruments.kind = 'future' then greatest(month::timestamptz, series_start.first_seen)
            else month::timestamptz
        end as expected_start,
        greatest(0, (epoch(expected_end) - epoch(expected_start)) // i.seconds)::bigint as expected_rows
    from loaded
    inner join intervals as i using (interval)
    inner join series_start using (vendor, venue, instrument_key, interval)
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
