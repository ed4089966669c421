-- int_price_observations: one row per (vendor, venue, instrument_key, timestamp_type, interval, ts):
-- every vendor's natively loaded price rows in one shape. Vendors that do not compute pct
-- changes or ratios leave those columns null; the marts compute them.
with

aperiodic as (
    select * from staging.stg_aperiodic__derivative_price
),

unioned as (
    select * from aperiodic
)

select * from unioned
