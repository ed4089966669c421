-- stg_aperiodic__funding: one row per (venue, instrument_key, timestamp_type, interval, ts) as
-- Aperiodic served it: the last funding rate and the last predicted funding rate of the interval
-- (fractions per funding period) and their statistics. Aperiodic sends no funding interval, and a
-- row per interval tells none: marts.fct_carry takes it from ref.funding_interval.
with

renamed as (
    -- the raw columns, but the partition month and the load time
    select 'aperiodic' as vendor, * exclude (month, loaded_at)
    from raw.aperiodic_funding
)

select * from renamed
