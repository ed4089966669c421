-- int_kaiko__carry_observations: Kaiko's rows in int_carry_observations' shape: mark and index of
-- its finest loaded interval per instrument (int_finest_loaded_interval; a 1h row repeats a 1m row), no
-- funding or open interest.
with

kaiko as (
    select * from staging.stg_kaiko__derivative_price
),

kaiko_finest as (
    select * from intermediate.int_finest_loaded_interval
    where vendor = 'kaiko'
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
    semi join kaiko_finest as f using (venue, instrument_key, timestamp_type, interval)
)

select * from kaiko_carry
