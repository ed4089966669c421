-- stg_kaiko__derivative_price: one row per (venue, instrument_key, interval, ts) as Kaiko served
-- it, in the shared observation shape. A Kaiko row is a snapshot (the last minute of its period,
-- stamped with the period start) on exchange time, with no pct changes of its own.
with

source as (
    select * from raw.kaiko_derivative_price
),

renamed as (
    select
        'kaiko' as vendor, venue, instrument_key, 'exchange' as timestamp_type, interval, ts,
        last_price, index_price, mark_price,
        -- a snapshot has no pct changes of its own: the marts compute them
        null::double as last_price_pct_change, null::double as index_price_pct_change,
        null::double as mark_price_pct_change, null::double as mark_index_pct_change_ratio,
        null::double as mark_last_pct_change_ratio, null::double as index_last_pct_change_ratio
    from source
)

select * from renamed
