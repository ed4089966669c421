-- stg_aperiodic__funding: one row per (venue, instrument_key, timestamp_type, interval, ts) of an
-- interval in which the venue settled funding, with the funding interval that applied to it.
-- Aperiodic sends no interval, so it is derived from the series' own settlement times:
--   observed: hours since the previous settlement of the same series, where that gap is a funding
--     interval venues use (1, 2, 4 or 8 h) and can be told from the data interval (the gap is
--     longer than the interval, or the interval is 1h or finer: no venue funds more often than
--     hourly). A Binance move from 8 h to 4 h shows as the first 4 h gap.
--   previous: otherwise (a missing settlement leaves a 16 h gap, a 1d series has 24 h gaps) the
--     last observed interval before it in the series;
--   next: for the first settlements of a series, the first observed interval after them.
-- Null when the series observes none; fct_carry then uses the instrument's (ref.instrument).
with

source as (
    select * from raw.aperiodic_funding
),

intervals as (
    select * from ref.intervals
),

gaps as (
    select
        s.venue,
        s.instrument_key,
        s.timestamp_type,
        s.interval,
        s.ts,
        s.funding_rate,
        i.seconds as interval_seconds,
        (epoch(s.ts) - epoch(lag(s.ts) over series)) / 3600.0 as gap_hours
    from source as s
    inner join intervals as i using (interval)
    window series as (partition by s.venue, s.instrument_key, s.timestamp_type, s.interval order by s.ts)
),

observed as (
    select
        *,
        case
            when gap_hours in (1, 2, 4, 8) and (gap_hours * 3600 > interval_seconds or interval_seconds <= 3600)
                then gap_hours
        end as observed_interval_hours
    from gaps
),

derived as (
    select
        'aperiodic' as vendor,
        venue,
        instrument_key,
        timestamp_type,
        interval,
        ts,
        funding_rate,
        coalesce(
            observed_interval_hours,
            last_value(observed_interval_hours ignore nulls) over (
                series rows between unbounded preceding and 1 preceding
            ),
            first_value(observed_interval_hours ignore nulls) over (
                series rows between 1 following and unbounded following
            )
        ) as funding_interval_hours,
        case
            when observed_interval_hours is not null then 'observed'
            when last_value(observed_interval_hours ignore nulls) over (
                series rows between unbounded preceding and 1 preceding
            ) is not null then 'previous'
            when first_value(observed_interval_hours ignore nulls) over (
                series rows between 1 following and unbounded following
            ) is not null then 'next'
        end as funding_interval_derivation
    from observed
    window series as (partition by venue, instrument_key, timestamp_type, interval order by ts)
)

select * from derived
