-- int_aperiodic__carry_observations: Aperiodic's rows in int_carry_observations' shape. Rows come
-- from the finest natively loaded interval of the exchange timestamp type (int_finest_loaded_interval), so
-- a month loaded at 1m and 1h is not counted twice. Funding (the last and the predicted rate of the
-- interval; its funding interval comes from ref.funding_interval in fct_carry) and open interest
-- (base units, coins) join the price row of the same series and interval start.
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

aperiodic_finest as (
    select * from intermediate.int_finest_loaded_interval
    where vendor = 'aperiodic' and timestamp_type = 'exchange'
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
        fu.predicted_funding_rate,
        null::double as funding_interval_hours,
        oi.open_interest,
        oi.open_interest_unit,
        null::double as contract_size
    from aperiodic as a
    semi join aperiodic_finest as f using (venue, instrument_key, timestamp_type, interval)
    left join aperiodic_funding as fu using (venue, instrument_key, timestamp_type, interval, ts)
    left join aperiodic_open_interest as oi using (venue, instrument_key, timestamp_type, interval, ts)
    where a.timestamp_type = 'exchange'
)

select * from aperiodic_carry
