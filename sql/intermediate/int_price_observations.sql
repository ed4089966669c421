-- int_price_observations: one row per (vendor, venue, instrument_key, timestamp_type, interval, ts):
-- every vendor's natively loaded price rows in one shape. Vendors that do not compute pct
-- changes or ratios leave those columns null; the marts compute them.
with

aperiodic as (
    select * from staging.stg_aperiodic__derivative_price
),

kaiko as (
    select * from staging.stg_kaiko__derivative_price
),

cayolargo as (
    select * exclude (funding_rate, funding_interval_hours, open_interest, contract_size)
    from staging.stg_cayolargo__futures
),

unioned as (
    select * from aperiodic
    union all by name
    select * from kaiko
    union all by name
    select * from cayolargo
)

select * from unioned
