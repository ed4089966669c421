-- stg_cayolargo__futures: one row per (venue, instrument_key, ts) of a CayøLargo Deribit snapshot
-- (10-minute, exchange time), in the shared observation shape plus the carry inputs. A snapshot
-- is one observation: its pct changes and ratios are left null for the marts to compute.
with

source as (
    select * from raw.cayolargo_futures
),

renamed as (
    select
        'cayolargo' as vendor, venue, instrument_key, 'exchange' as timestamp_type, '10m' as interval, ts,
        last_price, index_price, mark_price,
        -- a snapshot has no pct changes of its own: the marts compute them
        null::double as last_price_pct_change, null::double as index_price_pct_change,
        null::double as mark_price_pct_change, null::double as mark_index_pct_change_ratio,
        null::double as mark_last_pct_change_ratio, null::double as index_last_pct_change_ratio,
        -- carry inputs: funding per instrument and its interval (from the mapping, perpetuals only)
        funding_rate,
        funding_interval_hours,
        open_interest,
        contract_size
    from source
)

select * from renamed
