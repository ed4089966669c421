-- stg_aperiodic__derivative_price: one row per (venue, instrument_key, timestamp_type, interval, ts)
-- as Aperiodic served it, in the shared observation shape. Aperiodic rows are already intervals
-- and carry the vendor's own pct changes and ratios.
with

source as (
    select * from raw.aperiodic_derivative_price
),

renamed as (
    select
        'aperiodic' as vendor,
        venue,
        instrument_key,
        timestamp_type,
        interval,
        ts,
        last_price,
        index_price,
        mark_price,
        last_price_pct_change,
        index_price_pct_change,
        mark_price_pct_change,
        mark_index_pct_change_ratio,
        mark_last_pct_change_ratio,
        index_last_pct_change_ratio
    from source
)

select * from renamed
