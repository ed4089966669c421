-- stg_aperiodic__derivative_price: one row per (venue, instrument_key, timestamp_type, interval, ts)
-- as Aperiodic served it, in the shared observation shape. Aperiodic rows are already intervals
-- and carry the vendor's own pct changes and ratios.
with

renamed as (
    -- the raw columns in their order, but the partition month and the load time
    select 'aperiodic' as vendor, * exclude (month, loaded_at)
    from raw.aperiodic_derivative_price
)

select * from renamed
