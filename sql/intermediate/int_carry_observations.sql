-- int_carry_observations: one row per (vendor, venue, instrument_key, ts) with the inputs of carry:
-- mark and index, and funding and open interest where the vendor carries them. Aperiodic rows come
-- from the finest natively loaded interval of the exchange timestamp type (see raw.load_log),
-- so a month loaded at 1m and 1h is not counted twice; Kaiko rows (exchange time) likewise.
-- Aperiodic funding and open interest join the price row of the same series and interval start:
-- funding only on intervals in which the venue settled (null in between, never carried forward),
-- with the interval derived in stg_aperiodic__funding; open interest in base units (coins).
-- open_interest_unit says how fct_carry turns open interest into USD: 'contracts' (CayøLargo) or
-- 'base' (Aperiodic).
with

aperiodic as (
    select * from staging.stg_aperiodic__derivative_price
),

aperiodic_funding as (
    select * from staging.stg_aperiodic__funding
),

aperiodic_open_interest as (
    select * from staging.stg_aperiodic__open_interest
),

kaiko as (
    select * from staging.stg_kaiko__derivative_price
),

cayolargo as (
    select * from staging.stg_cayolargo__futures
),

intervals as (
    select * from ref.intervals
),

aperiodic_finest as (
    select log.venue, log.instrument_key, arg_min(log.interval, i.seconds) as interval
    from raw.load_log as log
    inner join intervals as i using (interval)
    where log.vendor = 'aperiodic' and log.timestamp_type = 'exchange'
    group by all
),

aperiodic_carry as (
    select
        a.vendor,
        a.venue,
        a.instrument_key,
        a.ts,
        a.mark_price,
        a.index_price,
        fu.funding_rate,
        fu.funding_interval_hours,
        oi.open_interest,
        oi.open_interest_unit,
        null::double as contract_size
    from aperiodic as a
    semi join aperiodic_finest as f using (venue, instrument_key, interval)
    left join aperiodic_funding as fu using (venue, instrument_key, timestamp_type, interval, ts)
    left join aperiodic_open_interest as oi using (venue, instrument_key, timestamp_type, interval, ts)
    where a.timestamp_type = 'exchange'
),

-- Kaiko likewise: its finest loaded interval per instrument (a 1h row repeats a 1m row)
kaiko_finest as (
    select log.venue, log.instrument_key, arg_min(log.interval, i.seconds) as interval
    from raw.load_log as log
    inner join intervals as i using (interval)
    where log.vendor = 'kaiko'
    group by all
),

kaiko_carry as (
    select
        k.vendor,
        k.venue,
        k.instrument_key,
        k.ts,
        k.mark_price,
        k.index_price,
        null::double as funding_rate,
        null::double as funding_interval_hours,
        null::double as open_interest,
        null::varchar as open_interest_unit,
        null::double as contract_size
    from kaiko as k
    semi join kaiko_finest as f using (venue, instrument_key, interval)
),

-- CayøLargo snapshots carry funding (per instrument, with its interval) and open interest
cayolargo_carry as (
    select
        vendor,
        venue,
        instrument_key,
        ts,
        mark_price,
        index_price,
        funding_rate,
        funding_interval_hours,
        open_interest,
        'contracts' as open_interest_unit,
        contract_size
    from cayolargo
),

unioned as (
    select * from aperiodic_carry
    union all by name
    select * from kaiko_carry
    union all by name
    select * from cayolargo_carry
)

select * from unioned
